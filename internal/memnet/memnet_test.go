package memnet

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestListenAndDialErrors(t *testing.T) {
	n := New()
	l, err := n.Listen("api.sim:80")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		do   func() error
	}{
		{"listen twice", func() error { _, err := n.Listen("api.sim:80"); return err }},
		{"listen without port", func() error { _, err := n.Listen("api.sim"); return err }},
		{"dial nobody", func() error { _, err := n.Dial(context.Background(), "tcp", "other.sim:80"); return err }},
	}
	for _, tt := range tests {
		if err := tt.do(); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Dial(context.Background(), "tcp", "api.sim:80"); !errors.Is(err, ErrRefused) {
		t.Errorf("dial after close: %v, want ErrRefused", err)
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("accept after close: %v, want net.ErrClosed", err)
	}
	if _, err := n.Listen("api.sim:80"); err != nil {
		t.Errorf("address not freed by Close: %v", err)
	}
}

// TestHTTPOnVirtualTime is the property the simulation relies on: net/http
// over memnet inside a bubble, with many concurrent requests to a handler
// that waits ten minutes, takes exactly ten minutes of bubble time.
func TestHTTPOnVirtualTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New()
		l, err := n.Listen("api.sim:80")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(10 * time.Minute)
			_, _ = io.WriteString(w, "done")
		})}
		go func() { _ = srv.Serve(l) }()
		tr := &http.Transport{DialContext: n.Dial}
		hc := &http.Client{Transport: tr}
		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, 50)
		for range 50 {
			wg.Go(func() {
				resp, err := hc.Get("http://api.sim/")
				if err != nil {
					errs <- err
					return
				}
				b, _ := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				if string(b) != "done" {
					errs <- errors.New("body " + string(b))
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if got := time.Since(start); got != 10*time.Minute {
			t.Errorf("bubble time %v, want exactly 10m", got)
		}
		tr.CloseIdleConnections()
		_ = srv.Close()
	})
}
