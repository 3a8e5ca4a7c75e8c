package sakuraapi

import (
	"hash/fnv"
	"strconv"
	"strings"
)

// Sakura Cloud resource IDs are 12-digit integers (types.ID is an int64,
// e.g. 113500012345); the world's are strings such as "vm-00001", or any
// name a hand-written scenario gives ("srv-01"). ID maps one to the other
// deterministically, so that tests (and the conformance suite's
// Harness.ID) can translate world IDs without asking a running emulator:
//
//	1 kind n(10)                    n from "<prefix>-<digits>" (vm, disk, snap, helper)
//	1 kind a(6) b(4)                for "bk-<digits>-<digits>" (backups)
//	1 kind fnv64(id) % 10^10        for anything else (images, hand-written IDs)
//
// The kind digit is cosmetic: what an ID names is the role the Server
// registered it with (a hand-written VM ID hashes under kindOther and is
// still a server). Should two world IDs meet on one number, the later one
// takes the next free number of its kind, and only the Server knows it.
const (
	idBase   = 100_000_000_000 // 10^11: every ID has 12 digits
	kindSpan = 10_000_000_000  // 10^10 numbers per kind
)

// Kinds of resource IDs (the second digit).
const (
	kindVM     = 1
	kindDisk   = 2
	kindSnap   = 3
	kindHelper = 4
	kindBackup = 5
	kindImage  = 6 // a public archive: a world helper image
	kindBase   = 7 // a user archive: the base image of a zone and release
	kindShell  = 8 // a server created by the API and not yet given a disk
	kindOther  = 9
)

var prefixKind = map[string]int{"vm": kindVM, "disk": kindDisk, "snap": kindSnap, "helper": kindHelper, "bk": kindBackup, "img": kindImage}

// ID returns the Sakura-style numeric ID (as a decimal string) the emulator
// shows for a world resource ID that met no other on its number. Pure
// function; equal inputs, equal outputs.
func ID(worldID string) string { return strconv.FormatInt(numID(worldID), 10) }

func numID(worldID string) int64 {
	kind := prefixKindOf(worldID)
	_, rest, _ := strings.Cut(worldID, "-")
	switch kind {
	case kindOther:
	case kindBackup:
		a, b, two := strings.Cut(rest, "-")
		if na, ok1 := digits(a, 6); ok1 && two {
			if nb, ok2 := digits(b, 4); ok2 {
				return compose(kind, na*10_000+nb)
			}
		}
	default:
		if n, ok := digits(rest, 10); ok {
			return compose(kind, n)
		}
	}
	return hashedID(kind, worldID)
}

// compose is the ID number n (< kindSpan) of a kind.
func compose(kind int, n int64) int64 { return idBase + int64(kind)*kindSpan + n }

func hashedID(kind int, key string) int64 {
	h := fnv.New64a()
	h.Write([]byte(key))
	return compose(kind, int64(h.Sum64()%kindSpan))
}

// nextOf is the number after n within n's kind (wrapping).
func nextOf(n int64) int64 {
	base := (n / kindSpan) * kindSpan
	return base + (n-base+1)%kindSpan
}

func prefixKindOf(worldID string) int {
	p, _, _ := strings.Cut(worldID, "-")
	if k, ok := prefixKind[p]; ok {
		return k
	}
	return kindOther
}

// digits parses a run of at most max decimal digits.
func digits(s string, max int) (int64, bool) {
	if s == "" || len(s) > max {
		return 0, false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}
