package sakura

import (
	"context"
	"fmt"

	"github.com/sacloud/iaas-api-go"
	"github.com/sacloud/iaas-api-go/types"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
)

// preflight reads the API key's permission level (auth-status) and maps
// each action onto it. Sakura Cloud has no dry run and no quota API: the
// level is all it tells, and the quota is not checkable.
type preflight struct{ *core }

// levelAllows is what each permission level allows, from least to most:
// view reads; power also stops, starts and resets; arrange also edits
// existing resources (connects and disconnects disks); create also
// creates and deletes them (archives, disks, servers).
var levelAllows = map[types.EPermission][]providers.Action{
	types.Permissions.View:    nil,
	types.Permissions.Power:   {providers.ActStop, providers.ActStart, providers.ActRestart},
	types.Permissions.Arrange: {providers.ActStop, providers.ActStart, providers.ActRestart, providers.ActAttach, providers.ActDetach},
	types.Permissions.Create:  providers.Actions,
}

// Permissions implements providers.Preflight with one auth-status read.
func (p preflight) Permissions(ctx context.Context, _ inventory.VM, acts []providers.Action) ([]providers.Permission, error) {
	var st *iaas.AuthStatus
	err := p.call(ctx, "Permissions", "auth-status", func(ctx context.Context) (err error) {
		st, err = p.api.auth.Read(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	allowed, known := levelAllows[st.Permission]
	how := fmt.Sprintf("Sakura auth-status permission %q", st.Permission)
	out := make([]providers.Permission, len(acts))
	for i, a := range acts {
		out[i] = providers.Permission{Action: a, Allowed: providers.AllowedUnknown, How: how + " (a level fixfleet does not know)"}
		if known {
			out[i].Allowed, out[i].How = providers.AllowedNo, how
			for _, x := range allowed {
				if x == a {
					out[i].Allowed = providers.AllowedYes
				}
			}
		}
	}
	return out, nil
}

// HelperQuota implements providers.Preflight: not checkable on Sakura.
func (preflight) HelperQuota(context.Context) (providers.Quota, error) {
	return providers.Quota{How: "Sakura Cloud's API has no quota read (the server quota is on the control panel or from support)"}, nil
}
