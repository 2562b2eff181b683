"""What every feature shares and that imports no feature: columns and money, encryption,
countries, the database handle, shared form pieces, paging and request limits."""
