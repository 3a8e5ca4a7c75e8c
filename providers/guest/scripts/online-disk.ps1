# online-disk: bring one disk online (Windows assigns a new identity if it
# collides with another disk's) and give its data volumes a drive letter.
# Idempotent. Parameters (stdin JSON): number, serial.
try {
    $p = [Console]::In.ReadToEnd() | ConvertFrom-Json
    $d = DiskArg $p
    if ($d.IsOffline) { Set-Disk -Number $d.Number -IsOffline $false }
    if ($d.IsReadOnly) { Set-Disk -Number $d.Number -IsReadOnly $false }
    foreach ($pt in Get-Partition -DiskNumber $d.Number) {
        $t = [string]$pt.Type
        if (($t -eq 'Basic' -or $t -eq 'IFS') -and -not ($pt.DriveLetter -and [char]$pt.DriveLetter -ne [char]0)) {
            $pt | Add-PartitionAccessPath -AssignDriveLetter
        }
    }
    [ordered]@{ disk = (DiskInfo (Get-Disk -Number $d.Number)) } | ConvertTo-Json -Compress -Depth 6
} catch {
    [Console]::Error.WriteLine('online-disk: ' + $_.Exception.Message); exit 1
}
