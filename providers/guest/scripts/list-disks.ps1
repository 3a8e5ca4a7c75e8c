# list-disks: every disk the helper sees, with identity, offline state and
# volumes. Read-only. Parameters (stdin JSON): none ({}).
try {
    $null = [Console]::In.ReadToEnd() | ConvertFrom-Json
    $disks = New-Object Collections.ArrayList
    foreach ($d in Get-Disk | Sort-Object Number) { [void]$disks.Add((DiskInfo $d)) }
    [ordered]@{ disks = $disks } | ConvertTo-Json -Compress -Depth 6
} catch {
    [Console]::Error.WriteLine('list-disks: ' + $_.Exception.Message); exit 1
}
