use crate::plugin::Registry;

pub trait OsqueryPlugin: Send + Sync {
    fn name(&self) -> String;
    fn registry(&self) -> Registry;
    fn routes(&self) -> crate::_osquery::ExtensionPluginResponse;
    fn ping(&self) -> crate::_osquery::ExtensionStatus;
    fn handle_call(
        &self,
        request: crate::_osquery::ExtensionPluginRequest,
    ) -> crate::_osquery::ExtensionResponse;
    /// Answer `call` by writing rows into `rows` instead of building them
    /// (vendored patch 9): return the status, or `None` to be asked through
    /// [`OsqueryPlugin::handle_call`] instead (the default).
    fn handle_call_streamed(
        &self,
        _request: &crate::_osquery::ExtensionPluginRequest,
        _rows: &mut crate::rows::RowWriter,
    ) -> Option<crate::_osquery::ExtensionStatus> {
        None
    }
    fn shutdown(&self);
}
