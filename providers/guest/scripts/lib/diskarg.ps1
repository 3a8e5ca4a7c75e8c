# Prepended to the scripts that act on one disk: DiskArg returns the disk at
# $p.number after checking that it carries $p.serial, and exits 87 (refused)
# when it does not.
function DiskArg($p) {
    $d = Get-Disk -Number ([int]$p.number)
    if ([string]$p.serial -eq '' -or ([string]$d.SerialNumber).Trim() -ne [string]$p.serial) {
        [Console]::Error.WriteLine("disk $([int]$p.number) does not carry the expected serial"); exit 87
    }
    $d
}
