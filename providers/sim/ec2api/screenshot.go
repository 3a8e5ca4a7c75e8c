package ec2api

import (
	"context"
	"encoding/base64"
	"encoding/xml"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers/sim/screens"
)

type consoleScreenshotResponse struct {
	XMLName    xml.Name `xml:"GetConsoleScreenshotResponse"`
	NS         string   `xml:"xmlns,attr"`
	RequestID  string   `xml:"requestId"`
	InstanceID string   `xml:"instanceId" ec2id:"i"`
	ImageData  string   `xml:"imageData"`
}

// getConsoleScreenshot answers GetConsoleScreenshot: the instance's screen
// as a base64 JPEG (WakeUp is accepted and ignored). An instance that is
// not running has no screen: IncorrectInstanceState.
func (s *Server) getConsoleScreenshot(ctx context.Context, q *request) (any, *apiError) {
	id := q.form.Get("InstanceId")
	p, err := s.w.PowerStates(ctx, q.account, []string{id})
	if aerr := fromWorld(err, "Instance", "IncorrectInstanceState"); aerr != nil {
		return nil, aerr
	}
	power, ok := p[id]
	if !ok {
		return nil, notFoundIDs("InvalidInstanceID.NotFound", []string{id})
	}
	if power != inventory.PowerRunning {
		return nil, errf(400, "IncorrectInstanceState", "The instance '%s' is not in a state from which a screenshot can be taken (%s).", id, power)
	}
	k, err := s.w.Screen(ctx, q.account, id)
	if aerr := fromWorld(err, "Instance", "IncorrectInstanceState"); aerr != nil {
		return nil, aerr
	}
	return consoleScreenshotResponse{NS: ec2NS, RequestID: q.id, InstanceID: id,
		ImageData: base64.StdEncoding.EncodeToString(screens.JPEG(k, id))}, nil
}
