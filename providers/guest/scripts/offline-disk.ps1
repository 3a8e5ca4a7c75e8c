# offline-disk: take one disk offline. Idempotent.
# Parameters (stdin JSON): number, serial.
try {
    $p = [Console]::In.ReadToEnd() | ConvertFrom-Json
    $d = DiskArg $p
    if (-not $d.IsOffline) { Set-Disk -Number $d.Number -IsOffline $true }
    [ordered]@{ disk = (DiskInfo (Get-Disk -Number $d.Number)) } | ConvertTo-Json -Compress -Depth 6
} catch {
    [Console]::Error.WriteLine('offline-disk: ' + $_.Exception.Message); exit 1
}
