package sakuraapi

import (
	"net/http"
	"slices"

	"github.com/sacloud/iaas-api-go/types"

	"github.com/fixfleet/fixfleet/providers"
)

// levels are Sakura Cloud's permission levels, most first, with the world
// actions each one needs allowed (create: everything; arrange: power and
// connecting disks; power: power only; view: nothing).
var levels = []struct {
	level types.EPermission
	needs []providers.Action
}{
	{types.Permissions.Create, providers.Actions},
	{types.Permissions.Arrange, []providers.Action{providers.ActStop, providers.ActStart, providers.ActRestart, providers.ActAttach, providers.ActDetach}},
	{types.Permissions.Power, []providers.Action{providers.ActStop, providers.ActStart, providers.ActRestart}},
	{types.Permissions.View, nil},
}

// authStatus answers GET auth-status (flat, as the API does) with the account's permission: the
// highest level whose actions the world allows the account (a dry run of
// each, without effect).
func (s *Server) authStatus(q *req) {
	ok, err := s.w.DryRun(q.ctx, q.acct, providers.Actions)
	if err != nil {
		s.fail(q, err)
		return
	}
	allowed := map[providers.Action]bool{}
	for i, a := range providers.Actions {
		allowed[a] = ok[i]
	}
	level := types.Permissions.View
	for _, l := range levels {
		if !slices.ContainsFunc(l.needs, func(a providers.Action) bool { return !allowed[a] }) {
			level = l.level
			break
		}
	}
	// The API answers this one flat, not wrapped in {"AuthStatus": ...}.
	q.reply(http.StatusOK, map[string]any{"AuthClass": types.AuthClasses.Account, "AuthMethod": types.AuthMethods.APIKey,
		"IsAPIKey": true, "Permission": level})
}
