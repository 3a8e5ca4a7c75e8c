# readiness-facts: what readiness needs to know of a running guest that the
# cloud cannot tell. Whether the WinRM service may start in Safe Mode with
# networking (it is listed under the SafeBoot\Network key), and whether the
# system volume is BitLocker-protected, with its recovery-password
# protector's ID (the key itself is never read). Read-only.
# Parameters (stdin JSON): none ({}).
$ErrorActionPreference = 'Stop'
try {
    $null = [Console]::In.ReadToEnd() | ConvertFrom-Json
    $key = 'HKLM:\SYSTEM\CurrentControlSet\Control\SafeBoot\Network\WinRM'
    $safe = [bool](Test-Path -LiteralPath $key)
    $bl = $false
    $kid = ''
    $v = Get-BitLockerVolume -MountPoint $env:SystemDrive -ErrorAction SilentlyContinue
    if ($v -and $v.VolumeStatus -ne 'FullyDecrypted') {
        $bl = $true
        $kp = $v.KeyProtector | Where-Object { $_.KeyProtectorType -eq 'RecoveryPassword' } | Select-Object -First 1
        if ($kp) { $kid = ([string]$kp.KeyProtectorId).Trim('{', '}').ToUpperInvariant() }
    }
    [ordered]@{ safe_mode_winrm = $safe; bitlocker = $bl; key_id = $kid } | ConvertTo-Json -Compress
} catch {
    [Console]::Error.WriteLine('readiness-facts: ' + $_.Exception.Message); exit 1
}
