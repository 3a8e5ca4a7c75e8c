package simulation

import (
	"fmt"
	"strings"

	"github.com/fixfleet/fixfleet/providers/sim/simapi"
)

// Served is a world served to other processes (`fixfleet sim serve`): its
// control plane as JSON over HTTP, its guests behind the WinRM gateway,
// and its face's emulator if any.
type Served struct {
	*Backend
	srv *simapi.Server
}

// Serve opens the world o describes (see Open), starts its outage if any,
// and serves its control plane on listen, which must be a loopback
// host:port (the world hands out test credentials): another address is
// an *InputError for option "listen", its message starting with the
// address. Close it.
func Serve(o Options, listen string) (*Served, error) {
	if !strings.HasPrefix(listen, "127.") && !strings.HasPrefix(listen, "localhost:") && !strings.HasPrefix(listen, "[::1]:") {
		return nil, badOption("listen", fmt.Errorf("%s: the simulator serves test credentials and must listen on loopback (127.0.0.1:PORT)", listen))
	}
	b, err := Open(o)
	if err != nil {
		return nil, err
	}
	if err := b.ScheduleOutage(); err != nil {
		b.Close()
		return nil, err
	}
	srv, err := simapi.Start(b.world, b.gateway, listen, simapi.ServerOptions{})
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("simulator: serving on %s: %w", listen, err)
	}
	b.closers = append(b.closers, srv.Close)
	return &Served{Backend: b, srv: srv}, nil
}

// URL is where the control plane is served (--sim-endpoint).
func (s *Served) URL() string { return s.srv.URL() }
