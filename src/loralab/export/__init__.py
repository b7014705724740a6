"""Getting adapters out of loralab: publishing versions into a serving models folder or the hub."""
