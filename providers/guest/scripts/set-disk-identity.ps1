# set-disk-identity: set a disk's MBR signature or GPT disk GUID back to
# identity. Idempotent. Parameters (stdin JSON): number, serial, identity.
try {
    $p = [Console]::In.ReadToEnd() | ConvertFrom-Json
    $st = [string]$p.identity.style
    $id = ([string]$p.identity.id).ToUpper()
    if (-not (($st -eq 'mbr' -and $id -match '^[0-9A-F]{8}$') -or ($st -eq 'gpt' -and $id -match '^[0-9A-F]{8}(-[0-9A-F]{4}){3}-[0-9A-F]{12}$'))) {
        [Console]::Error.WriteLine('set-disk-identity: bad identity'); exit 87
    }
    $d = DiskArg $p
    if ((DiskInfo $d).identity.id -ne $id) {
        if ($st -eq 'gpt') { Set-Disk -Number $d.Number -Guid "{$id}" }
        else { Set-Disk -Number $d.Number -Signature ([Convert]::ToUInt32($id, 16)) }
    }
    [ordered]@{ disk = (DiskInfo (Get-Disk -Number $d.Number)) } | ConvertTo-Json -Compress -Depth 6
} catch {
    [Console]::Error.WriteLine('set-disk-identity: ' + $_.Exception.Message); exit 1
}
