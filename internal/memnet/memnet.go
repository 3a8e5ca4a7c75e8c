// Package memnet is an in-memory network: listeners and a dialer keyed by
// address, whose connections are net.Pipe pairs. Nothing touches the
// kernel, so it can run inside a testing/synctest bubble, where a real
// socket would not count as durably blocked; net/http, masterzen/winrm and
// the cloud SDKs run over it unchanged through a custom dial function.
//
// A Network is safe for concurrent use. It has no background goroutines:
// closing every Listener ends everything it started.
package memnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
)

// ErrRefused is returned (wrapped) by Dial when nothing listens at the
// address, as a refused TCP connection would be.
var ErrRefused = errors.New("connection refused")

// Network is a set of listeners by address ("host:port"). The zero value
// is not usable; use New.
type Network struct {
	mu        sync.Mutex
	listeners map[string]*Listener
}

// New returns an empty network.
func New() *Network { return &Network{listeners: map[string]*Listener{}} }

// Addr is a memnet address.
type Addr string

// Network implements net.Addr.
func (Addr) Network() string { return "memnet" }

// String implements net.Addr.
func (a Addr) String() string { return string(a) }

// Listen returns a listener at addr ("host:port", any names: they are only
// keys). An address already in use is an error; closing its listener frees
// it.
func (n *Network) Listen(addr string) (*Listener, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("memnet: listen %q: want host:port: %w", addr, err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, used := n.listeners[addr]; used {
		return nil, fmt.Errorf("memnet: listen %q: address already in use", addr)
	}
	l := &Listener{n: n, addr: Addr(addr), conns: make(chan net.Conn), done: make(chan struct{})}
	n.listeners[addr] = l
	return l, nil
}

// Dial connects to the listener at addr; network is ignored (connections
// are streams). It blocks until the listener accepts, ctx ends or the
// listener closes.
func (n *Network) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	n.mu.Lock()
	l := n.listeners[addr]
	n.mu.Unlock()
	if l == nil {
		return nil, &net.OpError{Op: "dial", Net: network, Addr: Addr(addr), Err: ErrRefused}
	}
	client, server := net.Pipe()
	select {
	case l.conns <- &conn{Conn: server, local: l.addr, remote: Addr("client:" + addr)}:
		return &conn{Conn: client, local: Addr("client:" + addr), remote: l.addr}, nil
	case <-l.done:
		_, _ = client.Close(), server.Close()
		return nil, &net.OpError{Op: "dial", Net: network, Addr: Addr(addr), Err: ErrRefused}
	case <-ctx.Done():
		_, _ = client.Close(), server.Close()
		return nil, &net.OpError{Op: "dial", Net: network, Addr: Addr(addr), Err: ctx.Err()}
	}
}

// Listener is a net.Listener on a Network.
type Listener struct {
	n     *Network
	addr  Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

// Accept implements net.Listener: it waits for a Dial, or returns
// net.ErrClosed once the listener is closed.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, &net.OpError{Op: "accept", Net: "memnet", Addr: l.addr, Err: net.ErrClosed}
	}
}

// Close implements net.Listener: pending and later Dials fail, the address
// is freed. Connections already accepted stay open. Idempotent.
func (l *Listener) Close() error {
	l.once.Do(func() {
		close(l.done)
		l.n.mu.Lock()
		if l.n.listeners[string(l.addr)] == l {
			delete(l.n.listeners, string(l.addr))
		}
		l.n.mu.Unlock()
	})
	return nil
}

// Addr implements net.Listener.
func (l *Listener) Addr() net.Addr { return l.addr }

// conn is one end of a pipe with the network's addresses.
type conn struct {
	net.Conn
	local, remote net.Addr
}

func (c *conn) LocalAddr() net.Addr  { return c.local }
func (c *conn) RemoteAddr() net.Addr { return c.remote }
