// Command probe runs in pods on the sandbox's real nodes: it listens on TCP :2222, prints a
// greeting with its hostname, resolves each name given as an argument through the pod's
// resolver (CoreDNS via /etc/resolv.conf, retrying for up to a minute) and prints "resolved
// NAME ADDRS" or "unresolved NAME ERR"; an argument "dial:NAME" is resolved and then dialled
// at NAME:2222 (retrying): "connected NAME" or "unconnected NAME ERR"; then it waits for SIGTERM.
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
	listener, err := net.Listen("tcp", ":2222")
	if err != nil {
		fmt.Printf("listen: %v\n", err)
		os.Exit(1)
	}
	go func() {
		for {
			conn, err := listener.Accept()
			if err != nil {
				return
			}
			conn.Close()
		}
	}()
	fmt.Printf("hello from %s\n", host)
	resolver := &net.Resolver{PreferGo: true}
	for _, arg := range os.Args[1:] {
		name, connect := strings.CutPrefix(arg, "dial:")
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
			if connect {
				fmt.Println(dial(name))
			}
		}
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	fmt.Println("bye")
}

func dial(name string) string {
	var err error
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		var conn net.Conn
		conn, err = net.DialTimeout("tcp", net.JoinHostPort(name, "2222"), 3*time.Second)
		if err == nil {
			conn.Close()
			return "connected " + name
		}
	}
	return fmt.Sprintf("unconnected %s %v", name, err)
}
