// Command probe runs in pods on the sandbox's real nodes: it prints a greeting with its
// hostname, resolves each name given as an argument through the pod's resolver (CoreDNS via
// /etc/resolv.conf, retrying for up to a minute), prints "resolved NAME ADDRS" or
// "unresolved NAME ERR", then waits for SIGTERM.
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	host, _ := os.Hostname()
	fmt.Printf("hello from %s\n", host)
	resolver := &net.Resolver{PreferGo: true}
	for _, name := range os.Args[1:] {
		var addrs []string
		var err error
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(500 * time.Millisecond) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			addrs, err = resolver.LookupHost(ctx, name)
			cancel()
			if err == nil || time.Now().After(deadline) {
				break
			}
		}
		if err != nil {
			fmt.Printf("unresolved %s %v\n", name, err)
		} else {
			fmt.Printf("resolved %s %s\n", name, strings.Join(addrs, ","))
		}
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	fmt.Println("bye")
}
