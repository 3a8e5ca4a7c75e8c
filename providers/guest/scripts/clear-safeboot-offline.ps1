# clear-safeboot-offline: on a helper, remove the safeboot value of the
# default boot entry in the BCD store of an attached disk, so that the disk
# boots normally again on its own VM. Idempotent.
# Parameters (stdin JSON): number, serial (the disk), store (the BCD store's
# path on the disk's system partition: \Boot\BCD for BIOS/MBR,
# \EFI\Microsoft\Boot\BCD for UEFI/GPT).
$ErrorActionPreference = 'Stop'
try {
    $p = [Console]::In.ReadToEnd() | ConvertFrom-Json
    $d = DiskArg $p
    $was = BCDStore $d ([string]$p.store) {
        param($store, $entry)
        $set = [bool]($entry -match '^safeboot\s')
        if ($set) {
            $null = bcdedit /store $store /deletevalue '{default}' safeboot
            if ($LASTEXITCODE -ne 0) { throw 'bcdedit /deletevalue failed on the offline store' }
        }
        $set
    }
    [ordered]@{ was_set = $was } | ConvertTo-Json -Compress
} catch {
    [Console]::Error.WriteLine('clear-safeboot-offline: ' + $_.Exception.Message); exit 1
}
