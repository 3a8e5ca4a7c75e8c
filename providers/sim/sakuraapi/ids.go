package sakuraapi

import (
	"hash/fnv"
	"strconv"
	"strings"
)

// Sakura Cloud resource IDs are integers (types.ID is an int64); the world's
// are strings such as "vm-00001". ID maps one to the other deterministically,
// so that tests (and the conformance suite's Harness.ID) can translate world
// IDs without asking a running emulator:
//
//	kind*10^17 + n                  for "<prefix>-<digits>"   (vm, disk, snap, helper)
//	kind*10^17 + a*10^4 + b         for "bk-<digits>-<digits>" (backups)
//	kind*10^17 + fnv64(id) % 10^16  for anything else (images, hand-written IDs)
//
// The kind digit tells what the ID names; the reverse mapping of hashed IDs
// is kept by the Server that emitted them.
const kindSpan = 100_000_000_000_000_000 // 10^17

// Kinds of resource IDs (the leading digit).
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
// shows for a world resource ID. Pure function; equal inputs, equal outputs.
func ID(worldID string) string { return strconv.FormatInt(numID(worldID), 10) }

func numID(worldID string) int64 {
	prefix, rest, _ := strings.Cut(worldID, "-")
	kind, ok := prefixKind[prefix]
	if !ok {
		kind = kindOther
	}
	if ok {
		if kind == kindBackup {
			a, b, two := strings.Cut(rest, "-")
			if na, ok1 := digits(a, 13); ok1 && two {
				if nb, ok2 := digits(b, 4); ok2 {
					return int64(kind)*kindSpan + na*10_000 + nb
				}
			}
		} else if n, ok := digits(rest, 17); ok {
			return int64(kind)*kindSpan + n
		}
	}
	return hashedID(kind, worldID)
}

func hashedID(kind int, key string) int64 {
	h := fnv.New64a()
	h.Write([]byte(key))
	return int64(kind)*kindSpan + int64(h.Sum64()%(kindSpan/10))
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

// kindOf returns the kind digit of a numeric ID (0 if out of range).
func kindOf(id int64) int {
	if id <= 0 {
		return 0
	}
	return int(id / kindSpan)
}
