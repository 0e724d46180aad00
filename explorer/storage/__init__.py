"""Storage back ends: the interface in :mod:`.base`, HDF5 through PyTables in :mod:`.hdf5`,
and the in-memory reference back end in :mod:`.memory`."""
