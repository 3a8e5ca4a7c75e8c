# set-safeboot-offline: on a helper, set the safeboot value of the default
# boot entry to network in the BCD store of an attached disk, so that the
# disk boots into Safe Mode with Networking on its own VM. The store is on
# the system partition, which BitLocker does not encrypt, so no recovery key
# is needed; BitLocker's default BCD validation profile does not include
# safeboot, so the VM's TPM still unlocks its volume. Idempotent.
# Parameters (stdin JSON): number, serial (the disk), store (the BCD store's
# path on the disk's system partition: \Boot\BCD for BIOS/MBR,
# \EFI\Microsoft\Boot\BCD for UEFI/GPT).
$ErrorActionPreference = 'Stop'
try {
    $p = [Console]::In.ReadToEnd() | ConvertFrom-Json
    $d = DiskArg $p
    if ($d.IsBoot -or $d.IsSystem) { throw 'refusing: that is the helper''s own disk' }
    $rel = [string]$p.store
    if ($rel -ne '\Boot\BCD' -and $rel -ne '\EFI\Microsoft\Boot\BCD') { throw 'store must be \Boot\BCD or \EFI\Microsoft\Boot\BCD' }
    $esp = '{c12a7328-f81f-11d2-ba4b-00a0c93ec93b}'
    $part = Get-Partition -DiskNumber $d.Number | Where-Object { $_.GptType -eq $esp -or $_.IsActive } | Select-Object -First 1
    if (-not $part) { throw 'the disk has no system partition (EFI system or active)' }
    $dir = Join-Path $env:TEMP ('fixfleet-bcd-' + [guid]::NewGuid().ToString('N'))
    $null = New-Item -ItemType Directory -Path $dir
    Add-PartitionAccessPath -DiskNumber $d.Number -PartitionNumber $part.PartitionNumber -AccessPath $dir
    try {
        $store = Join-Path $dir $rel.TrimStart('\')
        $bcd = bcdedit /store $store /enum '{default}'
        if ($LASTEXITCODE -ne 0) { throw 'bcdedit /enum failed on the offline store' }
        $was = [bool]($bcd -match '^safeboot\s+Network')
        if (-not $was) {
            $null = bcdedit /store $store /set '{default}' safeboot network
            if ($LASTEXITCODE -ne 0) { throw 'bcdedit /set failed on the offline store' }
        }
    } finally {
        Remove-PartitionAccessPath -DiskNumber $d.Number -PartitionNumber $part.PartitionNumber -AccessPath $dir
        Remove-Item -Path $dir -Force
    }
    [ordered]@{ was_set = $was } | ConvertTo-Json -Compress
} catch {
    [Console]::Error.WriteLine('set-safeboot-offline: ' + $_.Exception.Message); exit 1
}
