# check-hives: load the SYSTEM and SOFTWARE hives of the Windows installation
# under root, read a key every healthy hive has, unload them. Read-only.
# Parameters (stdin JSON): root (drive letter, e.g. "E:").
$ErrorActionPreference = 'Stop'
try {
    $p = [Console]::In.ReadToEnd() | ConvertFrom-Json
    if ([string]$p.root -notmatch '^[A-Za-z]:$') { [Console]::Error.WriteLine('check-hives: bad root'); exit 87 }
    $res = New-Object Collections.ArrayList
    foreach ($h in @(@('SYSTEM', 'Select'), @('SOFTWARE', 'Microsoft'))) {
        $name = $h[0]
        $key = 'HKLM\FIXFLEET_' + $name
        $reg = 'Registry::HKEY_LOCAL_MACHINE\FIXFLEET_' + $name
        $file = Join-Path ([string]$p.root + '\') ('Windows\System32\config\' + $name)
        $ok = $false; $det = ''
        if (Test-Path -LiteralPath $reg) { $null = reg.exe unload $key }
        if (-not (Test-Path -LiteralPath $file -PathType Leaf)) {
            $det = 'hive file missing'
        } else {
            $null = reg.exe load $key $file
            if ($LASTEXITCODE -ne 0) {
                $det = 'hive does not load'
            } else {
                try {
                    $null = Get-Item -LiteralPath ($reg + '\' + $h[1])
                    $ok = $true
                } catch { $det = 'key ' + $h[1] + ' unreadable' }
                [gc]::Collect()
                $null = reg.exe unload $key
            }
        }
        [void]$res.Add([ordered]@{ name = $name; ok = $ok; detail = $det })
    }
    [ordered]@{ hives = $res } | ConvertTo-Json -Compress -Depth 4
} catch {
    [Console]::Error.WriteLine('check-hives: ' + $_.Exception.Message); exit 1
}
