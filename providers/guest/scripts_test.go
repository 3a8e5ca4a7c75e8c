package guest

import (
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestScriptsKeepTheirContract checks, without running PowerShell, that
// each script does what its catalog entry promises with the right cmdlets,
// reads only parameters its Params type has, and writes only keys its
// Result type has (and all of them).
func TestScriptsKeepTheirContract(t *testing.T) {
	results := map[Name]any{
		Probe: ProbeResult{}, DeleteFiles: DeleteResult{}, ClearSafeBoot: SafeBootResult{},
		CheckHives: CheckHivesResult{}, ListDisks: ListDisksResult{}, OnlineDisk: DiskResult{},
		UnlockVolume: UnlockResult{}, SetDiskIdentity: DiskResult{}, OfflineDisk: DiskResult{},
		ClearSafeBootOffline: SafeBootResult{}, SetSafeBootOffline: SafeBootResult{},
		ReadinessFacts: ReadinessFactsResult{},
	}
	must := map[Name][]string{
		Probe:           {"Get-CimInstance Win32_OperatingSystem", "bcdedit /enum '{default}'", "Get-ChildItem -LiteralPath $d -Filter $pat"},
		DeleteFiles:     {"$t = $f.LastWriteTimeUtc", "$t -ge $from -and $t -lt $until -and $h.StartsWith($hdr)", "Remove-Item -LiteralPath $f.FullName", "$f.Name -notlike $pat"},
		ClearSafeBoot:   {"bcdedit /deletevalue '{default}' safeboot"},
		CheckHives:      {"reg.exe load $key $file", "reg.exe unload $key", "'SYSTEM'", "'SOFTWARE'"},
		ListDisks:       {"Get-Disk", "Get-Partition", "Get-Volume", "Get-BitLockerVolume"},
		OnlineDisk:      {"$d = DiskArg $p", "Set-Disk -Number $d.Number -IsOffline $false", "Add-PartitionAccessPath -AssignDriveLetter"},
		UnlockVolume:    {"Unlock-BitLocker -MountPoint $dl -RecoveryPassword $p.recovery_key"},
		SetDiskIdentity: {"$d = DiskArg $p", "Set-Disk -Number $d.Number -Guid", "Set-Disk -Number $d.Number -Signature"},
		OfflineDisk:     {"$d = DiskArg $p", "Set-Disk -Number $d.Number -IsOffline $true"},
		ClearSafeBootOffline: {"$d = DiskArg $p", "bcdedit /store $store /deletevalue '{default}' safeboot",
			"Add-PartitionAccessPath -DiskNumber $d.Number", "Remove-PartitionAccessPath"},
		SetSafeBootOffline: {"$d = DiskArg $p", "bcdedit /store $store /set '{default}' safeboot network",
			"Add-PartitionAccessPath -DiskNumber $d.Number", "Remove-PartitionAccessPath"},
		ReadinessFacts: {`'HKLM:\SYSTEM\CurrentControlSet\Control\SafeBoot\Network\WinRM'`, "Test-Path -LiteralPath $key", "Get-BitLockerVolume -MountPoint $env:SystemDrive"},
	}
	paramRef := regexp.MustCompile(`\$p((?:\.[a-z_]+)+)`)
	critRef := regexp.MustCompile(`\$c\.([a-z_]+)`)
	keyRef := regexp.MustCompile(`(?:\{|;|^)\s*([a-z_]+) = `)
	for _, n := range Names {
		t.Run(string(n), func(t *testing.T) {
			text := Catalog()[n]
			for _, s := range must[n] {
				if !strings.Contains(text, s) {
					t.Errorf("does not contain %q", s)
				}
			}
			pt, _ := ParamsType(n)
			params := jsonPaths(pt, "")
			for _, m := range paramRef.FindAllStringSubmatch(text, -1) {
				if !slices.Contains(params, m[1]) {
					t.Errorf("reads $p%s, not a parameter of %s (has %v)", m[1], pt, params)
				}
			}
			for _, m := range critRef.FindAllStringSubmatch(text, -1) {
				if !slices.Contains(params, ".criteria."+m[1]) {
					t.Errorf("reads criteria field %s, not a parameter", m[1])
				}
			}
			fields := jsonNames(reflect.TypeOf(results[n]))
			var keys []string
			for _, block := range orderedBlocks(text) {
				for _, line := range strings.Split(block, "\n") {
					for _, m := range keyRef.FindAllStringSubmatch(line, -1) {
						keys = append(keys, m[1])
					}
				}
			}
			for _, k := range keys {
				if !slices.Contains(fields, k) {
					t.Errorf("writes key %q, not a field of %T", k, results[n])
				}
			}
			for _, f := range fields {
				if !slices.Contains(keys, f) {
					t.Errorf("never writes field %q of %T", f, results[n])
				}
			}
		})
	}
}

// orderedBlocks returns the text of every [ordered]@{...} literal.
func orderedBlocks(text string) []string {
	var out []string
	for rest := text; ; {
		i := strings.Index(rest, "[ordered]@{")
		if i < 0 {
			return out
		}
		rest = rest[i+len("[ordered]@"):]
		depth := 0
		for j, r := range rest {
			if r == '{' {
				depth++
			} else if r == '}' {
				if depth--; depth == 0 {
					out = append(out, rest[:j+1])
					break
				}
			}
		}
	}
}

var timeType = reflect.TypeOf(time.Time{})

// jsonPaths lists the JSON paths (".a.b") of a params type.
func jsonPaths(t reflect.Type, prefix string) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name := strings.Split(f.Tag.Get("json"), ",")[0]
		out = append(out, prefix+"."+name)
		if f.Type.Kind() == reflect.Struct && f.Type != timeType {
			out = append(out, jsonPaths(f.Type, prefix+"."+name)...)
		}
	}
	return out
}

// jsonNames lists every JSON field name in a result type's tree.
func jsonNames(t reflect.Type) []string {
	var out []string
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Slice || t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || t == timeType {
			return
		}
		for i := range t.NumField() {
			f := t.Field(i)
			name := strings.Split(f.Tag.Get("json"), ",")[0]
			if !slices.Contains(out, name) {
				out = append(out, name)
			}
			walk(f.Type)
		}
	}
	walk(t)
	return out
}
