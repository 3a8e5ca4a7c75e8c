package simapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/fixfleet/fixfleet/internal/memnet"
	"github.com/fixfleet/fixfleet/providers"
)

// client speaks the wire format to one server.
type client struct {
	base string // "http://host:port", no trailing slash
	hc   *http.Client
}

// newClient checks that baseURL is plain HTTP on loopback (the simulator
// never leaves the machine) and returns a client for it. hc nil: a client
// of its own, with no proxy and no overall timeout (contexts bound calls).
func newClient(baseURL string, hc *http.Client) (*client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("simapi: endpoint %q: %w", baseURL, err)
	}
	if u.Scheme != "http" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("simapi: endpoint %q: want http://HOST:PORT", baseURL)
	}
	if !loopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("simapi: endpoint %q: the simulator is reached on loopback only (127.0.0.1, ::1, localhost)", baseURL)
	}
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.Proxy = nil
		tr.MaxIdleConnsPerHost = 64
		hc = &http.Client{Transport: tr}
	}
	return &client{base: u.Scheme + "://" + u.Host, hc: hc}, nil
}

// do sends one request (in nil: no body) and decodes a 200 into out. It
// returns the world's clock from the response header (zero if absent).
// Errors: the server's classified error; a transport failure or a dropped
// connection is ErrUnavailable naming op and res; an ended ctx is returned
// as ctx's error, wrapped with op and res.
func (c *client) do(ctx context.Context, method, path, op, res string, in, out any) (time.Time, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return time.Time{}, fmt.Errorf("%s %s: encoding the request: %w", op, res, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %s: %w", op, res, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return time.Time{}, fmt.Errorf("%s %s: %w", op, res, ctx.Err())
		}
		return time.Time{}, unavailable(op, res, err)
	}
	defer resp.Body.Close()
	now, _ := time.Parse(time.RFC3339Nano, resp.Header.Get(NowHeader))
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		if ctx.Err() != nil {
			return now, fmt.Errorf("%s %s: %w", op, res, ctx.Err())
		}
		return now, unavailable(op, res, err)
	}
	if resp.StatusCode != http.StatusOK {
		var eb ErrorBody
		if json.Unmarshal(data, &eb) != nil {
			eb = ErrorBody{}
		}
		return now, fromBody(eb, resp.StatusCode, op, res)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return now, fromBody(ErrorBody{Class: "unavailable", Message: "undecodable response"}, resp.StatusCode, op, res)
		}
	}
	return now, nil
}

// unavailable classifies a transport failure. The cause is reduced to what
// happened to the connection: it holds no request data.
func unavailable(op, res string, err error) error {
	msg := "the connection failed"
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET):
		msg = "connection dropped without a response (the request may have been applied)"
	case errors.As(err, &ne) && ne.Timeout():
		msg = "connection timed out"
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, memnet.ErrRefused):
		msg = "connection refused (is the simulator running?)"
	}
	return providers.Errorf(providers.ErrUnavailable, op, res, "%s", msg)
}
