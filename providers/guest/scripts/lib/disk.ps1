# Prepended to the disk scripts: DiskInfo describes one disk as the
# protocol's Disk.
$ErrorActionPreference = 'Stop'
function DiskInfo($d) {
    $vols = New-Object Collections.ArrayList
    if (-not $d.IsOffline) {
        foreach ($pt in Get-Partition -DiskNumber $d.Number -EA 0) {
            $v = $pt | Get-Volume -EA 0
            if (-not $v) { continue }
            $dl = ''; $bl = 'none'; $kid = ''
            if ([int][char]$pt.DriveLetter) { $dl = [string]$pt.DriveLetter + ':' }
            $b = $null
            if ($dl) { $b = Get-BitLockerVolume -MountPoint $dl -EA 0 }
            if ($b -and [string]$b.VolumeStatus -ne 'FullyDecrypted') {
                $bl = @('unlocked', 'locked')[[string]$b.LockStatus -eq 'Locked']
                $k = @($b.KeyProtector | ? { [string]$_.KeyProtectorType -eq 'RecoveryPassword' })[0]
                if ($k) { $kid = ([string]$k.KeyProtectorId).Trim('{}').ToUpper() }
            }
            $win = [bool]($dl -and (Test-Path -LiteralPath "$dl\Windows\System32"))
            [void]$vols.Add([ordered]@{ drive_letter = $dl; file_system = [string]$v.FileSystem; bitlocker = $bl; key_id = $kid; has_windows = $win })
        }
    }
    $id = [ordered]@{ style = 'mbr'; id = '{0:X8}' -f [uint32]$d.Signature }
    if ([string]$d.PartitionStyle -eq 'GPT') { $id = [ordered]@{ style = 'gpt'; id = ([string]$d.Guid).Trim('{}').ToUpper() } }
    $why = ''
    $lun = $null
    if ([string]$d.Location -match 'LUN (\d+)') { $lun = [int]$Matches[1] }
    if ($d.IsOffline) { $why = ([string]$d.OfflineReason).ToLower() -replace '^(4|.*collision.*)$', 'signature-collision' }
    [ordered]@{
        number = [int]$d.Number; serial = ([string]$d.SerialNumber).Trim(); lun = $lun; size_gb = [int]($d.Size / 1GB); identity = $id
        offline = [bool]$d.IsOffline; offline_reason = $why; is_boot = [bool]($d.IsBoot -or $d.IsSystem); volumes = $vols
    }
}
