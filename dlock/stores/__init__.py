"""Stores: where lock bytes live and which conditional writes each place gives, one module
per mechanism behind the contract in dlock.stores.base. dlock.targets picks one by URL scheme."""
