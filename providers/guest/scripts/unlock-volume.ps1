# unlock-volume: unlock a BitLocker volume with its recovery password.
# Idempotent. Parameters (stdin JSON): drive_letter, recovery_key (a secret:
# never echo it).
$ErrorActionPreference = 'Stop'
try {
    $p = [Console]::In.ReadToEnd() | ConvertFrom-Json
    $dl = [string]$p.drive_letter
    if ($dl -notmatch '^[A-Za-z]:$' -or [string]$p.recovery_key -notmatch '^\d{6}(-\d{6}){7}$') {
        [Console]::Error.WriteLine('unlock-volume: bad drive letter or recovery key format'); exit 87
    }
    $v = Get-BitLockerVolume -MountPoint $dl
    if ($v.LockStatus -eq 'Locked') {
        try { $null = Unlock-BitLocker -MountPoint $dl -RecoveryPassword $p.recovery_key }
        catch { throw 'the volume did not unlock with the recovery key' }
        $v = Get-BitLockerVolume -MountPoint $dl
    }
    [ordered]@{ unlocked = ($v.LockStatus -eq 'Unlocked') } | ConvertTo-Json -Compress
} catch {
    [Console]::Error.WriteLine('unlock-volume: ' + $_.Exception.Message); exit 1
}
