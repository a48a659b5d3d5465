# Windows equivalent of build.sh: builds python\dist\backend.exe (onefile).
#
#   powershell -ExecutionPolicy Bypass -File python\build.ps1 [-OneDir]
#
# Same choices as build.sh (read its comments): pinned PyInstaller from
# requirements-build.txt in python\.venv, --python-option u, no
# --bootloader-ignore-signals, build files under python\build, the result
# moved into python\dist only once complete, skipped when up to date.
# $env:PYTHON overrides the interpreter that creates the venv (default: py -3
# when the launcher exists, else python).
param([switch]$OneDir)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

$here = $PSScriptRoot
$venv = Join-Path $here '.venv'
$vpy = Join-Path $venv 'Scripts\python.exe'

# Runs a native command quietly; shows its output and stops if it fails.
function Invoke-Quiet([string]$exe, [string[]]$arguments) {
    # Windows PowerShell 5.1 turns each stderr line of a native command into
    # an error record under 'Stop' (warnings would abort the build): judge by
    # the exit code instead.
    $ErrorActionPreference = 'Continue'
    $out = & $exe @arguments 2>&1
    if ($LASTEXITCODE -ne 0) {
        $out | ForEach-Object { Write-Host $_ }
        throw "build.ps1: failed: $exe $($arguments -join ' ')"
    }
}

function Test-UpToDate([string]$target) {
    if (-not (Test-Path $target)) { return $false }
    $t = (Get-Item $target).LastWriteTimeUtc
    foreach ($src in @('backend.py', 'requirements-build.txt', 'build.ps1')) {
        if ((Get-Item (Join-Path $here $src)).LastWriteTimeUtc -ge $t) { return $false }
    }
    return $true
}

if (-not (Test-Path $vpy)) {
    if ($env:PYTHON) { Invoke-Quiet $env:PYTHON @('-m', 'venv', $venv) }
    elseif (Get-Command py -ErrorAction SilentlyContinue) { Invoke-Quiet 'py' @('-3', '-m', 'venv', $venv) }
    else { Invoke-Quiet 'python' @('-m', 'venv', $venv) }
}

$req = Join-Path $here 'requirements-build.txt'
$stamp = Join-Path $venv '.requirements-build.txt.stamp'
if (-not (Test-Path $stamp) -or (Get-Item $req).LastWriteTimeUtc -gt (Get-Item $stamp).LastWriteTimeUtc) {
    Invoke-Quiet $vpy @('-m', 'pip', 'install', '--disable-pip-version-check', '--no-input', '-q', '-r', $req)
    New-Item -ItemType File -Force $stamp | Out-Null
}

function Invoke-PyInstaller([string]$mode) {
    $root = Join-Path $here "build\$mode"
    Invoke-Quiet $vpy @('-m', 'PyInstaller', "--$mode", '--name', 'backend',
        '--python-option', 'u', '--noupx', '--noconfirm', '--clean', '--log-level', 'WARN',
        '--specpath', $root, '--workpath', (Join-Path $root 'work'),
        '--distpath', (Join-Path $root 'dist'), (Join-Path $here 'backend.py'))
}

$dist = Join-Path $here 'dist'
New-Item -ItemType Directory -Force $dist | Out-Null
$exe = Join-Path $dist 'backend.exe'
if (-not (Test-UpToDate $exe)) {
    Invoke-PyInstaller 'onefile'
    Move-Item -Force (Join-Path $here 'build\onefile\dist\backend.exe') $exe
}

if ($OneDir -and -not (Test-UpToDate (Join-Path $dist 'onedir\backend\backend.exe'))) {
    Invoke-PyInstaller 'onedir'
    $target = Join-Path $dist 'onedir'
    if (Test-Path $target) { Remove-Item -Recurse -Force $target }
    New-Item -ItemType Directory -Force $target | Out-Null
    Move-Item (Join-Path $here 'build\onedir\dist\backend') (Join-Path $target 'backend')
}
