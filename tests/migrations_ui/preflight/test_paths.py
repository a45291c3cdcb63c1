import pytest

from migrations_ui.preflight.facts import ShareFacts
from migrations_ui.preflight.paths import disallowed_path, is_local_path, parse_share_path, path_problem
from migrations_ui.preflight.rules import share_path_finding

SHARES = (
    ShareFacts("\\\\fs01.contoso.test\\vms", "fs01.contoso.test", "fs01.contoso.test"),
    ShareFacts("\\\\fs01\\vmstore2", "fs01", "fs01.contoso.test"),
)


@pytest.mark.parametrize(
    "path",
    [
        "\\\\fs01.contoso.test\\vms",
        "\\\\fs01.contoso.test\\vms\\web01\\web01.vhdx",
        "\\\\FS01.Contoso.Test\\VMs\\web01",  # case does not matter
        "\\\\fs01.contoso.test.\\vms",  # absolute DNS name with its trailing dot
        "\\\\?\\UNC\\fs01.contoso.test\\vms\\deep\\path",
        "\\\\?\\unc\\fs01.contoso.test\\vms",
        "D:\\Hyper-V",  # local paths are not share paths
        "C:\\ClusterStorage\\Volume1\\VMs",
        "\\\\?\\D:\\Hyper-V\\very\\long",
    ],
)
def test_it_accepts_fqdn_share_paths_and_local_paths(path):
    assert share_path_finding(path, SHARES) is None


@pytest.mark.parametrize(
    ("path", "corrected"),
    [
        ("\\\\fs01\\vmstore2", "\\\\fs01.contoso.test\\vmstore2"),
        ("\\\\fs01\\vmstore2\\web01\\disk.vhdx", "\\\\fs01.contoso.test\\vmstore2\\web01\\disk.vhdx"),
        ("\\\\FS01\\VMStore2", "\\\\fs01.contoso.test\\VMStore2"),  # mixed case still known
        ("\\\\fs01.\\vms", "\\\\fs01.contoso.test\\vms"),  # a trailing dot does not make a short name an FQDN
        ("\\\\?\\UNC\\fs01\\vms\\x", "\\\\fs01.contoso.test\\vms\\x"),
        ("//fs01/vms/x", "\\\\fs01.contoso.test\\vms\\x"),
        ("//fs01.contoso.test/vms/x", "\\\\fs01.contoso.test\\vms\\x"),  # forward slashes, even with the FQDN
    ],
)
def test_it_flags_short_names_with_the_corrected_path(path, corrected):
    finding = share_path_finding(path, SHARES)
    assert finding is not None
    assert finding.rule == "smb-path-not-fqdn" and finding.severity == "block"
    assert corrected in finding.message
    assert finding.remedy == f"Write the path as {corrected}"


@pytest.mark.parametrize(
    "path",
    [
        "\\\\10.0.0.5\\vms",
        "\\\\192.168.1.20\\vms\\web",
        "\\\\fe80--1.ipv6-literal.net\\vms",
        "\\\\?\\UNC\\10.0.0.5\\vms",
    ],
)
def test_it_flags_ip_addresses(path):
    finding = share_path_finding(path, SHARES)
    assert finding is not None and "IP address" in finding.message


def test_it_says_to_write_the_fqdn_when_the_server_is_unknown():
    finding = share_path_finding("\\\\nas7\\vms", SHARES)
    assert "nas7" in finding.message
    assert "fully qualified domain name" in finding.message


def test_it_parses_share_paths():
    parsed = parse_share_path("\\\\?\\UNC\\fs01.contoso.test.\\vms\\a\\b\\")
    assert (parsed.host, parsed.share, parsed.rest, parsed.long_form) == ("fs01.contoso.test", "vms", "a\\b", True)
    assert parsed.server_kind == "fqdn"
    assert parse_share_path("D:\\VMs") is None
    assert parse_share_path("\\\\server") is None
    assert parse_share_path("\\\\?\\D:\\VMs") is None


def test_it_knows_local_paths():
    assert is_local_path("D:\\VMs")
    assert is_local_path("\\\\?\\D:\\VMs")
    assert not is_local_path("\\\\?\\UNC\\fs01\\vms")
    assert not is_local_path("VMs\\relative")


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("", "Enter a destination path"),
        ("   ", "Enter a destination path"),
        ("D:\\VMs\x07bell", "control characters"),
        ("D:\\VMs\nnext", "control characters"),
        (" D:\\VMs", "spaces"),
        ("D:\\" + "a" * 300, "260"),
        ("D:\\VMs\\what?", "does not allow"),
        ("D:\\VMs\\a|b", "does not allow"),
        ("relative\\path", "Give a local path"),
        ("vms", "Give a local path"),
    ],
)
def test_it_refuses_unusable_paths(path, problem):
    assert problem in path_problem(path)


@pytest.mark.parametrize(
    "path", ["D:\\Hyper-V", "\\\\fs01.contoso.test\\vms\\x", "\\\\?\\D:\\" + "a" * 300, "\\\\fs01\\vms"]
)
def test_it_accepts_usable_paths(path):
    assert path_problem(path) is None


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("D:\\VMs\\..\\..\\Windows\\System32", ". or .. segments"),
        ("D:\\VMs\\..", ". or .. segments"),
        ("D:\\VMs\\.\\web01", ". or .. segments"),
        ("D:/VMs/../x", ". or .. segments"),
        ("D:\\VMs\\...\\x", ". or .. segments"),  # Windows trims the dots: the parent folder again
        ("\\\\fs01.contoso.test\\vms\\..\\other", ". or .. segments"),
        ("\\\\?\\D:\\VMs\\..\\x", ". or .. segments"),
        ("C:\\Windows", "system folder (Windows)"),
        ("C:\\Windows\\System32", "system folder (Windows)"),
        ("c:\\WINDOWS\\system32\\drivers", "system folder (WINDOWS)"),
        ("C:\\Windows.\\System32", "system folder"),  # Windows drops the trailing dot
        ("C:\\Program Files\\Hyper-V", "system folder (Program Files)"),
        ("C:\\Program Files (x86)", "system folder (Program Files (x86))"),
        ("C:\\PROGRA~1\\x", "system folder"),
        ("C:\\System Volume Information", "system folder"),
        ("E:\\$Recycle.Bin\\x", "system folder"),
        ("\\\\?\\C:\\Windows\\Temp", "system folder"),
        ("C:/Windows/Temp", "system folder"),
        ("\\\\hv01.contoso.test\\C$\\Windows", "system folder"),
        ("\\\\hv01.contoso.test\\ADMIN$\\Temp", "system folder (ADMIN$)"),
    ],
)
def test_it_disallows_dot_dot_segments_and_system_folders(path, reason):
    assert reason in disallowed_path(path)


@pytest.mark.parametrize(
    "path",
    [
        "D:\\Hyper-V",
        "D:\\VMs\\web.01",
        "D:\\VMs\\..web",  # a name that starts with dots is a name
        "C:\\ProgramData\\Microsoft\\Windows\\Hyper-V",  # Hyper-V's own default folder
        "C:\\Users\\Public\\Documents\\Hyper-V\\Virtual Hard Disks",  # its default disk folder
        "C:\\ClusterStorage\\Volume1\\Windows",  # only the system's own folder below the root
        "D:\\Hyper-V\\Windows",
        "\\\\fs01.contoso.test\\windows\\vms",  # a share named windows is not C:\Windows
        "\\\\?\\UNC\\fs01.contoso.test\\vms\\x",
    ],
)
def test_it_allows_ordinary_folders(path):
    assert disallowed_path(path) is None
