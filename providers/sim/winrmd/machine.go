package winrmd

import (
	"context"

	"github.com/fixfleet/fixfleet/providers/guest"
)

// Machine is a simulated Windows guest that executes the guest catalog's
// scripts against its own (simulated) disks. The world implements it; the
// WinRM server only speaks WS-Management, recognises scripts byte for byte,
// decodes their JSON parameters and calls these methods.
//
// Errors returned become a non-zero exit code and a message on stderr; they
// must never contain a secret (the recovery key of UnlockVolume in
// particular).
type Machine interface {
	Probe(ctx context.Context, p guest.ProbeParams) (guest.ProbeResult, error)
	DeleteFiles(ctx context.Context, p guest.DeleteParams) (guest.DeleteResult, error)
	ClearSafeBoot(ctx context.Context, p guest.ClearSafeBootParams) (guest.SafeBootResult, error)
	CheckHives(ctx context.Context, p guest.CheckHivesParams) (guest.CheckHivesResult, error)
	ListDisks(ctx context.Context, p guest.ListDisksParams) (guest.ListDisksResult, error)
	OnlineDisk(ctx context.Context, p guest.DiskParams) (guest.DiskResult, error)
	UnlockVolume(ctx context.Context, p guest.UnlockParams) (guest.UnlockResult, error)
	SetDiskIdentity(ctx context.Context, p guest.SetIdentityParams) (guest.DiskResult, error)
	OfflineDisk(ctx context.Context, p guest.DiskParams) (guest.DiskResult, error)
	ClearSafeBootOffline(ctx context.Context, p guest.BCDParams) (guest.SafeBootResult, error)
	SetSafeBootOffline(ctx context.Context, p guest.BCDParams) (guest.SafeBootResult, error)
	ReadinessFacts(ctx context.Context, p guest.ReadinessFactsParams) (guest.ReadinessFactsResult, error)
}

// Hosts is the simulated network as the WinRM server and its gateway see it:
// which guest answers at an address, with which credentials.
type Hosts interface {
	// Listening reports whether a WinRM service answers at host (an IP
	// address): false for a VM that is stopped, boot-looping, or whose
	// firewall blocks WinRM. It counts as an observation of that VM.
	Listening(host string) bool
	// Authenticate returns the machine at host if user/password are its
	// administrator credentials. ok is false when they are not (or nothing
	// listens). It must not log the password.
	Authenticate(host, user, password string) (m Machine, ok bool)
	// Refused records that the guest at host was sent a script that is not
	// in the catalog (or parameters it could not decode). reason is safe to
	// log; it never contains the script's parameters.
	Refused(host, reason string)
}
