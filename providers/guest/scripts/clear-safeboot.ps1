# clear-safeboot: remove the safeboot value of the default boot entry so the
# next boot is normal. Idempotent. Parameters (stdin JSON): none ({}).
$ErrorActionPreference = 'Stop'
try {
    $null = [Console]::In.ReadToEnd() | ConvertFrom-Json
    $bcd = bcdedit /enum '{default}'
    if ($LASTEXITCODE -ne 0) { throw 'bcdedit /enum failed' }
    $was = [bool]($bcd -match '^safeboot\s')
    if ($was) {
        $null = bcdedit /deletevalue '{default}' safeboot
        if ($LASTEXITCODE -ne 0) { throw 'bcdedit /deletevalue failed' }
    }
    [ordered]@{ was_set = $was } | ConvertTo-Json -Compress
} catch {
    [Console]::Error.WriteLine('clear-safeboot: ' + $_.Exception.Message); exit 1
}
