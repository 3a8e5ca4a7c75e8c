package world

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/fixfleet/fixfleet/providers"
)

// opAction is the action each mutating control-plane operation performs:
// an account denied that action (Limits.Denied) is refused it.
var opAction = map[string]providers.Action{
	"StopVMs": providers.ActStop, "StartVMs": providers.ActStart, "RestartVM": providers.ActRestart,
	"Snapshot": providers.ActSnapshot, "DetachDisk": providers.ActDetach, "AttachDisk": providers.ActAttach,
	"SwapBootDisk": providers.ActAttach, "DiskFromSnapshot": providers.ActCreateDisk,
	"RestoreBackup": providers.ActRestoreBackup, "CreateHelper": providers.ActCreateHelper,
	"ReleaseHelper": providers.ActDeleteHelper,
}

// denied reports whether account may not perform act. Caller holds mu.
func (w *World) denied(account string, act providers.Action) bool {
	return slices.Contains(w.limits.Denied[account], act)
}

// ErrDenied is the cause of a call refused for want of permission (the
// error's class is providers.ErrPermanent): faces answer it in their
// cloud's words (EC2's UnauthorizedOperation, Sakura's 403).
var ErrDenied = errors.New("access denied")

// deniedErr is the cloud's access-denied answer to op.
func deniedErr(op, res, account string, act providers.Action) error {
	return &providers.Error{Class: providers.ErrPermanent, Op: op, Resource: res,
		Err: fmt.Errorf("%w: account %s is not allowed %s", ErrDenied, account, act)}
}

// DryRun answers, without effect, whether account may perform each of
// acts (EC2's DryRun, a permission listing): one read-only control-plane
// call through the fault gate. The result is in acts' order.
func (w *World) DryRun(ctx context.Context, account string, acts []providers.Action) ([]bool, error) {
	out := make([]bool, len(acts))
	err := w.call(ctx, account, "DryRun", "account "+account, bucketNonMutating, func(time.Time) error {
		for i, a := range acts {
			out[i] = !w.denied(account, a)
		}
		return nil
	})
	return out, err
}

// HelperQuota reads account's helper quota (Limits.HelpersPerAccount) and
// how many helpers it has now; limit 0 means no quota. Read-only.
func (w *World) HelperQuota(ctx context.Context, account string) (limit, inUse int, err error) {
	err = w.call(ctx, account, "HelperQuota", "account "+account, bucketNonMutating, func(time.Time) error {
		limit = w.limits.HelpersPerAccount
		for _, v := range w.vms {
			if v.helper && v.account == account {
				inUse++
			}
		}
		return nil
	})
	return limit, inUse, err
}
