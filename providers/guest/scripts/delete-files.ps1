# delete-files: under root, delete the files of criteria.dir whose name matches
# criteria.pattern, whose LastWriteTimeUtc lies in [bad_from, bad_until) and
# whose first bytes start with criteria.header (when given); keep the rest.
# Parameters (stdin JSON): root ("C:" or a drive letter), criteria.
$ErrorActionPreference = 'Stop'
function T($v) {
    if ($v -is [datetime]) { return $v.ToUniversalTime() }
    [datetime]::Parse([string]$v, [Globalization.CultureInfo]::InvariantCulture, [Globalization.DateTimeStyles]'AdjustToUniversal,AssumeUniversal')
}
try {
    $p = [Console]::In.ReadToEnd() | ConvertFrom-Json
    $c = $p.criteria
    $dir = [string]$c.dir
    $pat = [string]$c.pattern
    $hdr = ([string]$c.header).ToUpperInvariant()
    if ([string]$p.root -notmatch '^[A-Za-z]:$' -or [IO.Path]::IsPathRooted($dir) -or $dir -match '(^|[\\/])\.\.([\\/]|$)' -or
        $pat -match '[\\/\[\]]' -or $pat -eq '' -or $hdr -notmatch '^([0-9A-F]{2}){0,32}$') {
        [Console]::Error.WriteLine('delete-files: bad root, dir, pattern or header'); exit 87
    }
    $from = T $c.bad_from
    $until = T $c.bad_until
    $del = New-Object Collections.ArrayList
    $kept = New-Object Collections.ArrayList
    $d = Join-Path ([string]$p.root + '\') $dir
    if (Test-Path -LiteralPath $d -PathType Container) {
        foreach ($f in Get-ChildItem -LiteralPath $d -Filter $pat -File -Force) {
            if ($f.Name -notlike $pat) { continue }
            $b = New-Object byte[] 32
            $s = [IO.File]::Open($f.FullName, 'Open', 'Read', 'ReadWrite')
            try { $n = $s.Read($b, 0, 32) } finally { $s.Close() }
            $h = ''
            if ($n -gt 0) { $h = -join ($b[0..($n - 1)] | ForEach-Object { $_.ToString('X2') }) }
            $t = $f.LastWriteTimeUtc
            $fact = [ordered]@{ path = $f.FullName; size = $f.Length; mod_time = $t.ToString('o'); header = $h }
            if ($t -ge $from -and $t -lt $until -and $h.StartsWith($hdr)) {
                Remove-Item -LiteralPath $f.FullName -Force
                [void]$del.Add($fact)
            } else {
                [void]$kept.Add($fact)
            }
        }
    }
    [ordered]@{ deleted = $del; kept = $kept } | ConvertTo-Json -Compress -Depth 4
} catch {
    [Console]::Error.WriteLine('delete-files: ' + $_.Exception.Message); exit 1
}
