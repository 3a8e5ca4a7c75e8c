# probe: boot mode, safe-boot flag, Windows release ("2019") and build
# ("17763.5936"), and the incident's files (with their first 32 bytes) on the
# live VM. Read-only. Parameters (stdin JSON): dir (relative to the system
# drive), pattern.
$ErrorActionPreference = 'Stop'
try {
    $p = [Console]::In.ReadToEnd() | ConvertFrom-Json
    $dir = [string]$p.dir
    $pat = [string]$p.pattern
    if ([IO.Path]::IsPathRooted($dir) -or $dir -match '(^|[\\/])\.\.([\\/]|$)' -or $pat -match '[\\/\[\]]' -or $pat -eq '') {
        [Console]::Error.WriteLine('probe: bad dir or pattern'); exit 87
    }
    $os = Get-CimInstance Win32_OperatingSystem
    $cs = Get-CimInstance Win32_ComputerSystem
    $mode = 'normal'
    if ($cs.BootupState -ne 'Normal boot') { $mode = 'safe' }
    $bcd = bcdedit /enum '{default}'
    if ($LASTEXITCODE -ne 0) { throw 'bcdedit /enum failed' }
    $flag = [bool]($bcd -match '^safeboot\s')
    $files = New-Object Collections.ArrayList
    $d = Join-Path $env:SystemDrive $dir
    if (Test-Path -LiteralPath $d -PathType Container) {
        foreach ($f in Get-ChildItem -LiteralPath $d -Filter $pat -File -Force) {
            if ($f.Name -notlike $pat) { continue }
            $b = New-Object byte[] 32
            $s = [IO.File]::Open($f.FullName, 'Open', 'Read', 'ReadWrite')
            try { $n = $s.Read($b, 0, 32) } finally { $s.Close() }
            $h = ''
            if ($n -gt 0) { $h = -join ($b[0..($n - 1)] | ForEach-Object { $_.ToString('X2') }) }
            [void]$files.Add([ordered]@{ path = $f.FullName; size = $f.Length; mod_time = $f.LastWriteTimeUtc.ToString('o'); header = $h })
        }
    }
    $rel = [string]$os.Caption
    if ($rel -match 'Windows Server (\d{4})') { $rel = $Matches[1] }
    $build = [string]$os.BuildNumber
    $ubr = (Get-ItemProperty -LiteralPath 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion' -Name UBR -EA 0).UBR
    if ($ubr) { $build += '.' + $ubr }
    $r = [ordered]@{
        hostname = $env:COMPUTERNAME; boot_mode = $mode; safe_boot_flag = $flag
        os_release = $rel; os_build = $build; files = $files
    }
    $r | ConvertTo-Json -Compress -Depth 4
} catch {
    [Console]::Error.WriteLine('probe: ' + $_.Exception.Message); exit 1
}
