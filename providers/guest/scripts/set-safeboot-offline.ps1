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
    $was = BCDStore $d ([string]$p.store) {
        param($store, $entry)
        $set = [bool]($entry -match '^safeboot\s+Network')
        if (-not $set) {
            $null = bcdedit /store $store /set '{default}' safeboot network
            if ($LASTEXITCODE -ne 0) { throw 'bcdedit /set failed on the offline store' }
        }
        $set
    }
    [ordered]@{ was_set = $was } | ConvertTo-Json -Compress
} catch {
    [Console]::Error.WriteLine('set-safeboot-offline: ' + $_.Exception.Message); exit 1
}
