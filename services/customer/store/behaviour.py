from servicekit.mongo import Index

INDEXES: list[Index] = []
