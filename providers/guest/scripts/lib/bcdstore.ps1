# Prepended to the scripts that edit an attached disk's BCD store: BCDStore
# mounts the system partition (EFI system or active) of disk $d at a new
# temporary folder, reads the default entry of the store at path $rel on
# it, runs $body with the store's full path and that entry's lines, and
# removes the mount whatever happens. It refuses the helper's own disk and
# a store path other than the two Windows uses. The value of $body is its
# value.
function BCDStore($d, $rel, [scriptblock]$body) {
    if ($d.IsBoot -or $d.IsSystem) { throw 'refusing: that is the helper''s own disk' }
    if ($rel -ne '\Boot\BCD' -and $rel -ne '\EFI\Microsoft\Boot\BCD') { throw 'store must be \Boot\BCD or \EFI\Microsoft\Boot\BCD' }
    $esp = '{c12a7328-f81f-11d2-ba4b-00a0c93ec93b}'
    $part = Get-Partition -DiskNumber $d.Number | Where-Object { $_.GptType -eq $esp -or $_.IsActive } | Select-Object -First 1
    if (-not $part) { throw 'the disk has no system partition (EFI system or active)' }
    $dir = Join-Path $env:TEMP ('fixfleet-bcd-' + [guid]::NewGuid().ToString('N'))
    $null = New-Item -ItemType Directory -Path $dir
    Add-PartitionAccessPath -DiskNumber $d.Number -PartitionNumber $part.PartitionNumber -AccessPath $dir
    try {
        $store = Join-Path $dir $rel.TrimStart('\')
        $entry = bcdedit /store $store /enum '{default}'
        if ($LASTEXITCODE -ne 0) { throw 'bcdedit /enum failed on the offline store' }
        & $body $store $entry
    } finally {
        Remove-PartitionAccessPath -DiskNumber $d.Number -PartitionNumber $part.PartitionNumber -AccessPath $dir
        Remove-Item -Path $dir -Force
    }
}
