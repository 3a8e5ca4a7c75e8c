package world

// UseDiskSerials makes the guests show each disk's serial number as
// f(disk's world ID), and expect it back in disk actions: a face whose
// cloud shows disks under IDs of its own (Sakura's numeric IDs) calls it
// once, before serving, so that a helper's disk listing names a disk as
// the cloud's API does. f must be pure.
func (w *World) UseDiskSerials(f func(diskID string) string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.serialOf = f
}

// serial is the serial number guests show for d. Caller holds mu.
func (w *World) serial(d *disk) string {
	if w.serialOf == nil {
		return d.id
	}
	return w.serialOf(d.id)
}
