package azure

import (
	"context"
	"errors"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"
	"golang.org/x/sync/errgroup"

	"github.com/fixfleet/fixfleet/providers"
)

type power core

// Stop deallocates the VMs (force: powers them off without a guest shutdown
// first) and waits until each is deallocated. Azure has no batch call: the
// VMs are stopped concurrently (Options.Concurrency), and every failure is
// reported, naming its VM. Idempotent.
func (p *power) Stop(ctx context.Context, vms []providers.VMRef, force bool) error {
	k := (*core)(p)
	return k.each(ctx, vms, func(ctx context.Context, ref providers.VMRef) error {
		r, s, err := k.resolve("Stop", ref.ID, "virtualMachines")
		if err != nil {
			return err
		}
		if force {
			_, err := await(ctx, k, s, bucketWrites, "Stop", ref.ID, func(ctx context.Context) (*runtime.Poller[armcompute.VirtualMachinesClientPowerOffResponse], error) {
				return s.vms.BeginPowerOff(ctx, r.group, r.name, &armcompute.VirtualMachinesClientBeginPowerOffOptions{SkipShutdown: to.Ptr(true)})
			})
			if err != nil {
				return err
			}
		}
		_, err = await(ctx, k, s, bucketWrites, "Stop", ref.ID, func(ctx context.Context) (*runtime.Poller[armcompute.VirtualMachinesClientDeallocateResponse], error) {
			return s.vms.BeginDeallocate(ctx, r.group, r.name, nil)
		})
		return err
	})
}

// Start starts the VMs concurrently and waits until each is running.
// Idempotent.
func (p *power) Start(ctx context.Context, vms []providers.VMRef) error {
	k := (*core)(p)
	return k.each(ctx, vms, func(ctx context.Context, ref providers.VMRef) error {
		r, s, err := k.resolve("Start", ref.ID, "virtualMachines")
		if err != nil {
			return err
		}
		_, err = await(ctx, k, s, bucketWrites, "Start", ref.ID, func(ctx context.Context) (*runtime.Poller[armcompute.VirtualMachinesClientStartResponse], error) {
			return s.vms.BeginStart(ctx, r.group, r.name, nil)
		})
		return err
	})
}

// Restart restarts one running VM and waits until Azure reports it done.
// ErrConflict if it is not running.
func (p *power) Restart(ctx context.Context, ref providers.VMRef) error {
	k := (*core)(p)
	r, s, err := k.resolve("Restart", ref.ID, "virtualMachines")
	if err != nil {
		return err
	}
	_, err = await(ctx, k, s, bucketWrites, "Restart", ref.ID, func(ctx context.Context) (*runtime.Poller[armcompute.VirtualMachinesClientRestartResponse], error) {
		return s.vms.BeginRestart(ctx, r.group, r.name, nil)
	})
	return err
}

// each runs f for every VM, Options.Concurrency at a time, to the end, and
// joins the failures (each names its VM).
func (k *core) each(ctx context.Context, vms []providers.VMRef, f func(context.Context, providers.VMRef) error) error {
	var mu sync.Mutex
	var errs []error
	var g errgroup.Group
	g.SetLimit(k.opts.Concurrency)
	for _, ref := range vms {
		g.Go(func() error {
			if err := f(ctx, ref); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
			return nil
		})
	}
	_ = g.Wait()
	return errors.Join(errs...)
}
