package sakuraapi

import (
	"encoding/base64"
	"net/http"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers/sim/screens"
)

// serverVNCSnapshot answers GET /server/{id}/vnc/snapshot: the server's
// screen as {"Image": base64 GIF}, as Sakura Cloud's API does (iaas-api-go
// does not wrap it; the older libsacloud's VNCSnapshotResponse and
// usacloud's vnc-snapshot, which saves it as a .gif, show the shape). The
// request's optional ScreenSaverExitTimeMS is accepted and ignored. A server
// that is not up has no screen: 409.
func (s *Server) serverVNCSnapshot(q *req) {
	id, sh, ok := s.serverTarget(q)
	if !ok {
		return
	}
	if sh != nil {
		s.conflict(q, "server %s is not running", q.r.PathValue("id"))
		return
	}
	p, ok := s.serverPower(q, id)
	if !ok {
		return
	}
	if p != inventory.PowerRunning {
		s.conflict(q, "server %s is not running", q.r.PathValue("id"))
		return
	}
	k, err := s.w.Screen(q.ctx, q.acct, id)
	if err != nil {
		s.fail(q, err)
		return
	}
	q.reply(http.StatusOK, map[string]any{"Image": base64.StdEncoding.EncodeToString(screens.GIF(k, id))})
}
