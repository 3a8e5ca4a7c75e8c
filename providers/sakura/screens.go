package sakura

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"

	"github.com/sacloud/iaas-api-go"

	"github.com/fixfleet/fixfleet/providers"
)

// Screenshot implements providers.Screens with GET
// /server/{id}/vnc/snapshot, which iaas-api-go does not wrap: it goes
// through the client's HTTP layer (authentication, retries, the API root)
// and fixfleet's rate limit. The answer is {"Image": base64 GIF}. Errors:
// ErrNotFound; ErrConflict while the server is down; ErrUnsupported with
// the library's fake driver (no HTTP layer).
func (o observer) Screenshot(ctx context.Context, vm providers.VMRef) ([]byte, error) {
	const op = "GetVNCSnapshot"
	res := vmRes(vm.String())
	if o.api.caller == nil {
		return nil, providers.Errorf(providers.ErrUnsupported, op, res, "no HTTP client to call the VNC snapshot endpoint")
	}
	id, err := parseID(op, res, vm.ID)
	if err != nil {
		return nil, err
	}
	var last error
	for _, z := range o.zonesFor(vm.Zone) {
		var body []byte
		err := o.call(ctx, op, res, func(ctx context.Context) (err error) {
			url := iaas.SakuraCloudAPIRoot + "/" + z + "/api/cloud/1.1/server/" + id.String() + "/vnc/snapshot"
			body, err = o.api.caller.Do(ctx, "GET", url, nil)
			return err
		})
		if errors.Is(err, providers.ErrNotFound) {
			last = err
			continue
		}
		if err != nil {
			return nil, err
		}
		var r struct{ Image string }
		if err := json.Unmarshal(body, &r); err != nil || r.Image == "" {
			return nil, providers.Errorf(providers.ErrUnavailable, op, res, "the answer carries no image")
		}
		img, err := base64.StdEncoding.DecodeString(r.Image)
		if err != nil {
			return nil, providers.Errorf(providers.ErrUnavailable, op, res, "the image is not base64")
		}
		return img, nil
	}
	return nil, last
}
