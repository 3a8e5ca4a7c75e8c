package guest

import (
	"context"

	"github.com/fixfleet/fixfleet/providers"
)

// The typed wrappers below run one catalog script each; see the catalog
// (protocol.go) for what each does and whether it is idempotent, and Run
// for the errors.

// Probe runs the probe script. Read-only.
func (c *Client) Probe(ctx context.Context, ep providers.Endpoint, cr Credentials, p ProbeParams) (ProbeResult, error) {
	var r ProbeResult
	err := c.Run(ctx, ep, cr, Probe, p, &r)
	return r, err
}

// DeleteFiles runs the delete-files script. Idempotent.
func (c *Client) DeleteFiles(ctx context.Context, ep providers.Endpoint, cr Credentials, p DeleteParams) (DeleteResult, error) {
	var r DeleteResult
	err := c.Run(ctx, ep, cr, DeleteFiles, p, &r)
	return r, err
}

// ClearSafeBoot runs the clear-safeboot script. Idempotent.
func (c *Client) ClearSafeBoot(ctx context.Context, ep providers.Endpoint, cr Credentials) (ClearSafeBootResult, error) {
	var r ClearSafeBootResult
	err := c.Run(ctx, ep, cr, ClearSafeBoot, ClearSafeBootParams{}, &r)
	return r, err
}

// CheckHives runs the check-hives script. Read-only.
func (c *Client) CheckHives(ctx context.Context, ep providers.Endpoint, cr Credentials, p CheckHivesParams) (CheckHivesResult, error) {
	var r CheckHivesResult
	err := c.Run(ctx, ep, cr, CheckHives, p, &r)
	return r, err
}

// ListDisks runs the list-disks script. Read-only.
func (c *Client) ListDisks(ctx context.Context, ep providers.Endpoint, cr Credentials) (ListDisksResult, error) {
	var r ListDisksResult
	err := c.Run(ctx, ep, cr, ListDisks, ListDisksParams{}, &r)
	return r, err
}

// OnlineDisk runs the online-disk script. Idempotent. ErrRefused when the
// disk at p.Number does not carry p.Serial.
func (c *Client) OnlineDisk(ctx context.Context, ep providers.Endpoint, cr Credentials, p DiskParams) (DiskResult, error) {
	var r DiskResult
	err := c.Run(ctx, ep, cr, OnlineDisk, p, &r)
	return r, err
}

// UnlockVolume runs the unlock-volume script. Idempotent. p.RecoveryKey
// travels only on the script's standard input and never appears in an
// error.
func (c *Client) UnlockVolume(ctx context.Context, ep providers.Endpoint, cr Credentials, p UnlockParams) (UnlockResult, error) {
	var r UnlockResult
	err := c.Run(ctx, ep, cr, UnlockVolume, p, &r)
	return r, err
}

// SetDiskIdentity runs the set-disk-identity script. Idempotent. ErrRefused
// when the disk at p.Number does not carry p.Serial.
func (c *Client) SetDiskIdentity(ctx context.Context, ep providers.Endpoint, cr Credentials, p SetIdentityParams) (DiskResult, error) {
	var r DiskResult
	err := c.Run(ctx, ep, cr, SetDiskIdentity, p, &r)
	return r, err
}

// OfflineDisk runs the offline-disk script. Idempotent. ErrRefused when the
// disk at p.Number does not carry p.Serial.
func (c *Client) OfflineDisk(ctx context.Context, ep providers.Endpoint, cr Credentials, p DiskParams) (DiskResult, error) {
	var r DiskResult
	err := c.Run(ctx, ep, cr, OfflineDisk, p, &r)
	return r, err
}
