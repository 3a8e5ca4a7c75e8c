package azureapi

import (
	"net/http"

	"github.com/fixfleet/fixfleet/providers/sim/screens"
)

// serveScreenshot serves the screenshot.bmp blob of boot diagnostics: the
// world's screen of the VM now, as an uncompressed 24-bit BMP (the format
// Azure's boot diagnostics screenshots come in).
func (s *Server) serveScreenshot(rw http.ResponseWriter, q *request, t diagTarget) {
	k, err := s.w.Screen(q.r.Context(), t.account, t.vm)
	if e := fromWorld(err); e != nil {
		s.fail(q, "", e)
		return
	}
	rw.Header().Set("Content-Type", "image/bmp")
	_, _ = rw.Write(screens.BMP(k, t.vm))
}
