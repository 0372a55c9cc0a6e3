// Command coredns is CoreDNS with only the plugins `berth sandbox up --kubelet` needs: the
// cluster domain served from the API (kubernetes: Services, headless Services per pod), and
// everything else forwarded to the host's resolver. A short plugin list keeps the build small.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

// directives: the plugins in CoreDNS's own execution order (its plugin.cfg), limited to the imports above.
var directives = []string{"bind", "errors", "log", "health", "ready", "cache", "kubernetes", "forward"}

func init() {
	dnsserver.Directives = directives
}

func main() {
	coremain.Run()
}
