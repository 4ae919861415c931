; Inno Setup 6 script for Hearth's Windows installer. Written with care, NOT run here (no
; Windows build machine); packaging/windows/build.ps1 compiles it:
;
;   ISCC /DAppVersion=0.1.0 /DDistDir=build\dist\hearth /DOutputDir=build\release ^
;        /DIconFile=build\icons\hearth.ico [/DSign "/Ssigntool=signtool sign ... $f"] hearth.iss
;
; Per machine: installs to Program Files, needs administrator rights, adds the folder to the
; system PATH so `hearth` works in any terminal. Silent install and uninstall for IT:
;   hearth-VERSION-windows-x64-setup.exe /VERYSILENT /SUPPRESSMSGBOXES /NORESTART /LOG=install.log
;   "C:\Program Files\Hearth\unins000.exe" /VERYSILENT /SUPPRESSMSGBOXES /NORESTART
; Uninstalling keeps users' data (chats, indexes, downloaded models). To delete the data of
; the user running the uninstaller as well, add /PURGEUSERDATA (asked, default No, when the
; uninstaller runs interactively). That runs `hearth erase --yes`, the same code as Settings >
; Delete all my data, so the chat-encryption key in Credential Manager goes too.
; Machine policy is separate: HKLM\Software\Policies\Hearth, set by Group Policy (docs/deploying.md).

#ifndef AppVersion
  #error Pass /DAppVersion=X.Y.Z
#endif
#ifndef DistDir
  #define DistDir "..\..\build\dist\hearth"
#endif
#ifndef OutputDir
  #define OutputDir "..\..\build\release"
#endif

[Setup]
; A fixed AppId: upgrades replace the installed version instead of installing beside it.
AppId={{6F0B5A7E-2C1D-4E8B-9A53-7D2E4C1B8F90}
AppName=Hearth
AppVersion={#AppVersion}
AppVerName=Hearth {#AppVersion}
AppPublisher=Hearth developers
VersionInfoVersion={#AppVersion}
DefaultDirName={autopf}\Hearth
DefaultGroupName=Hearth
DisableProgramGroupPage=yes
; Per machine only: no per-user install that would escape IT's management.
PrivilegesRequired=admin
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0
OutputDir={#OutputDir}
OutputBaseFilename=hearth-{#AppVersion}-windows-x64-setup
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
ChangesEnvironment=yes
CloseApplications=yes
RestartApplications=no
UninstallDisplayIcon={app}\hearth-gui.exe
UninstallDisplayName=Hearth
#ifdef IconFile
SetupIconFile={#IconFile}
#endif
#ifdef Sign
; Inno Setup signs the installer and the uninstaller it writes with the command given as
; /Ssigntool=... ; the app's own exe and dll files are signed before this script runs.
SignTool=signtool
SignedUninstaller=yes
#endif

[Tasks]
Name: desktopicon; Description: "Create a desktop shortcut"; Flags: unchecked

[Files]
Source: "{#DistDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\Hearth"; Filename: "{app}\hearth-gui.exe"; Comment: "Private AI on your own machine"
Name: "{autodesktop}\Hearth"; Filename: "{app}\hearth-gui.exe"; Tasks: desktopicon

[Registry]
Root: HKLM; Subkey: "SYSTEM\CurrentControlSet\Control\Session Manager\Environment"; \
    ValueType: expandsz; ValueName: "Path"; ValueData: "{olddata};{app}"; \
    Check: NotOnPath(ExpandConstant('{app}'))

[Run]
Filename: "{app}\hearth-gui.exe"; Description: "Start Hearth"; Flags: nowait postinstall skipifsilent

[Code]
const
  EnvKey = 'SYSTEM\CurrentControlSet\Control\Session Manager\Environment';

function NotOnPath(Dir: string): Boolean;
var
  Path: string;
begin
  if not RegQueryStringValue(HKEY_LOCAL_MACHINE, EnvKey, 'Path', Path) then
    Result := True
  else
    Result := Pos(';' + Uppercase(Dir) + ';', ';' + Uppercase(Path) + ';') = 0;
end;

procedure RemoveFromPath(Dir: string);
var
  Path: string;
  P: Integer;
begin
  if not RegQueryStringValue(HKEY_LOCAL_MACHINE, EnvKey, 'Path', Path) then
    exit;
  Path := ';' + Path + ';';
  P := Pos(';' + Uppercase(Dir) + ';', Uppercase(Path));
  if P = 0 then
    exit;
  Delete(Path, P, Length(Dir) + 1);
  Path := Copy(Path, 2, Length(Path) - 2);
  RegWriteExpandStringValue(HKEY_LOCAL_MACHINE, EnvKey, 'Path', Path);
end;

function HasParam(Name: string): Boolean;
var
  I: Integer;
begin
  Result := False;
  for I := 1 to ParamCount do
    if CompareText(ParamStr(I), Name) = 0 then
      Result := True;
end;

function PurgeUserData(): Boolean;
begin
  if HasParam('/PURGEUSERDATA') then
    Result := True
  else if UninstallSilent then
    Result := False
  else
    Result := MsgBox('Also delete your Hearth data (chats, document indexes, downloaded models)?' + #13#10 +
                     'Other users'' data is not touched.', mbConfirmation, MB_YESNO or MB_DEFBUTTON2) = IDYES;
end;

procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
var
  Code: Integer;
begin
  if CurUninstallStep = usUninstall then
  begin
    // While hearth.exe still exists: the app's own erase, which also removes the keyring key.
    if PurgeUserData() then
      if not Exec(ExpandConstant('{app}\hearth.exe'), 'erase --yes', '', SW_HIDE,
                  ewWaitUntilTerminated, Code) or (Code <> 0) then
        Log('hearth erase --yes failed with code ' + IntToStr(Code));
    RemoveFromPath(ExpandConstant('{app}'));
  end;
end;
