"""SOPy's `sopy.interface`: integrations with agent frameworks (`interface.strands`)."""
