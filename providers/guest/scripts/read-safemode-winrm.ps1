# read-safemode-winrm: whether the WinRM service may start in Safe Mode with
# networking, i.e. whether it is listed under the SafeBoot\Network key.
# Read-only. Parameters (stdin JSON): none ({}).
$ErrorActionPreference = 'Stop'
try {
    $null = [Console]::In.ReadToEnd() | ConvertFrom-Json
    $key = 'HKLM:\SYSTEM\CurrentControlSet\Control\SafeBoot\Network\WinRM'
    $allowed = [bool](Test-Path -LiteralPath $key)
    [ordered]@{ allowed = $allowed } | ConvertTo-Json -Compress
} catch {
    [Console]::Error.WriteLine('read-safemode-winrm: ' + $_.Exception.Message); exit 1
}
