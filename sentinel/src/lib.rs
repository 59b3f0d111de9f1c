//! keychain_access_sentinel: deliver osquery result lines to Microsoft Sentinel.
