package journal

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
)

// BenchmarkBeginEndStep: one step journaled before and after its effect, one
// goroutine at a time (two durable commits per op).
func BenchmarkBeginEndStep(b *testing.B) {
	ctx := context.Background()
	j, _ := openTemp(b)
	mustRun(b, j, "r1")
	intent := []byte(`{"disk":"disk-0123","zone":"is1a"}`)
	facts := map[string]string{"snapshot": "snap-0123"}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		id, err := j.BeginStep(ctx, StepIntent{RunID: "r1", VMKey: "vm1", Strategy: "helper-mount", Step: "snapshot", Attempt: i + 1, Intent: intent, At: t0})
		if err != nil {
			b.Fatal(err)
		}
		if err := j.EndStep(ctx, id, StepResult{Status: StepOK, Facts: facts, At: t0}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBeginEndStepParallel: many VMs in flight at once (group commit).
func BenchmarkBeginEndStepParallel(b *testing.B) {
	ctx := context.Background()
	j, _ := openTemp(b)
	mustRun(b, j, "r1")
	var vm atomic.Int64
	b.SetParallelism(32) // GOMAXPROCS*32 goroutines, like hundreds of VMs
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		key := "vm" + strconv.FormatInt(vm.Add(1), 10)
		for i := 1; pb.Next(); i++ {
			id, err := j.BeginStep(ctx, StepIntent{RunID: "r1", VMKey: key, Step: "snapshot", Attempt: i, At: t0})
			if err != nil {
				b.Fatal(err)
			}
			if err := j.EndStep(ctx, id, StepResult{Status: StepOK, Facts: map[string]string{"snapshot": "s"}, At: t0}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
