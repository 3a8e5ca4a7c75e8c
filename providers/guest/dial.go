package guest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"
)

// ConnectDialer reaches guests through an HTTP CONNECT proxy: the simulated
// network's gateway, or a bastion in real life. It is safe for concurrent
// use.
type ConnectDialer struct {
	// Proxy is the proxy's host:port.
	Proxy string
	// Timeout bounds connecting to the proxy and its answer to CONNECT
	// (default 10s).
	Timeout time.Duration
	// DialProxy opens the connection to the proxy (nil: TCP), e.g. an
	// in-memory network's dialer inside a testing/synctest bubble.
	DialProxy func(ctx context.Context, network, addr string) (net.Conn, error)
}

// NewConnectDialer returns a dial function, in the shape WinRM clients take,
// that opens each connection as a CONNECT tunnel through proxyAddr. A proxy
// that does not answer, or answers CONNECT with anything but 2xx, gives an
// error that matches ErrUnreachable.
func NewConnectDialer(proxyAddr string) func(network, addr string) (net.Conn, error) {
	d := &ConnectDialer{Proxy: proxyAddr}
	return d.Dial
}

// Dial implements the dial function shape of NewConnectDialer.
func (d *ConnectDialer) Dial(network, addr string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, addr)
}

// DialContext opens a tunnel to addr (host:port) through the proxy.
func (d *ConnectDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	dial := d.DialProxy
	if dial == nil {
		nd := net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
		dial = nd.DialContext
	}
	conn, err := dial(ctx, "tcp", d.Proxy)
	if err != nil {
		return nil, &classError{class: ErrUnreachable, msg: fmt.Sprintf("proxy %s: %v", d.Proxy, err)}
	}
	deadline := time.Now().Add(timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	req := &http.Request{
		Method: http.MethodConnect,
		URL:    &url.URL{Host: addr},
		Host:   addr,
		Header: http.Header{},
	}
	fail := func(format string, args ...any) (net.Conn, error) {
		_ = conn.Close()
		return nil, &classError{class: ErrUnreachable, msg: fmt.Sprintf("proxy %s: tunnel to %s: ", d.Proxy, addr) + fmt.Sprintf(format, args...)}
	}
	if err := req.Write(conn); err != nil {
		return fail("%v", err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return fail("%v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fail("proxy answered %s", resp.Status)
	}
	if !stop() {
		_ = conn.Close()
		return nil, ctx.Err()
	}
	_ = conn.SetDeadline(time.Time{})
	if br.Buffered() > 0 {
		return &bufferedConn{Conn: conn, r: br}, nil
	}
	return conn, nil
}

// bufferedConn is a tunnel whose first bytes were already read into r.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
