"""Small PDFs written byte by byte for the tests, so no library under test makes them: pages
with text, and whatever metadata a test wants them to carry."""


def _string(text):
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return f"({escaped})".encode("latin-1")


def xmp_packet(creator):
    """An XMP packet naming ``creator``, as word processors write one."""
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f"<dc:creator><rdf:Seq><rdf:li>{creator}</rdf:li></rdf:Seq></dc:creator>"
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
        '<?xpacket end="w"?>'
    ).encode()


def make_pdf(
    text="A quote for the new locks",
    pages=1,
    info=None,
    xmp=None,
    comment_by=None,
    jpeg=None,
    catalog=b"",
    page=b"",
    extra=(),
    image=None,
):
    """A valid PDF of ``pages`` pages, each showing ``text`` (uncompressed, so the words are
    in the file's bytes), with a document information dictionary ``info`` ({"Author": ...}),
    an XMP packet ``xmp`` on the catalog and on the first page, a comment on the first page
    written by ``comment_by``, and the photo ``jpeg`` (bytes, 32 x 24) drawn on it.

    ``catalog`` and ``page`` are written into the catalog and the first page's dictionary
    as they are; ``extra`` are more objects, each a dictionary (bytes) or a stream (its
    dictionary without /Length, and its data). In those dictionaries ``@0``, ``@1``... refer
    to the objects of ``extra`` and ``@P`` to the first page. ``image`` is (filters, data):
    the photo's /Filter written as given and its data already encoded by them."""
    objects = {}
    catalog_id, page_tree, font = 1, 2, 3
    next_id = 4
    kids = []
    metadata_id = None
    if xmp is not None:
        metadata_id, next_id = next_id, next_id + 1
        objects[metadata_id] = (
            b"<< /Type /Metadata /Subtype /XML /Length %d >>\nstream\n" % len(xmp)
            + xmp
            + b"\nendstream"
        )
    for number in range(pages):
        page_id, content_id = next_id, next_id + 1
        next_id += 2
        stream = b"BT /F1 12 Tf 72 720 Td " + _string(f"{text} (page {number + 1})") + b" Tj ET"
        images = b""
        if number == 0 and (jpeg is not None or image is not None):
            filters, data = image if image is not None else (b"/DCTDecode", jpeg)
            image_id, next_id = next_id, next_id + 1
            objects[image_id] = (
                b"<< /Type /XObject /Subtype /Image /Width 32 /Height 24 /ColorSpace /DeviceRGB"
                b" /BitsPerComponent 8 /Filter %s /Length %d >>\nstream\n"
                % (filters, len(data))
                + data
                + b"\nendstream"
            )
            stream += b" q 320 0 0 240 72 400 cm /Im1 Do Q"
            images = b" /XObject << /Im1 %d 0 R >>" % image_id
        objects[content_id] = b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream"
        extra_page = b""
        if number == 0 and metadata_id is not None:
            extra_page += b" /Metadata %d 0 R" % metadata_id
        if number == 0 and comment_by is not None:
            annotation_id, next_id = next_id, next_id + 1
            objects[annotation_id] = (
                b"<< /Type /Annot /Subtype /Text /Rect [72 600 92 620] /Contents (Check this)"
                b" /T " + _string(comment_by) + b" >>"
            )
            extra_page += b" /Annots [%d 0 R]" % annotation_id
        if number == 0:
            extra_page += b" " + page
        objects[page_id] = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R"
            b" /Resources << /Font << /F1 3 0 R >>%s >>%s >>" % (content_id, images, extra_page)
        )
        kids.append(page_id)
    catalog_extra = b" /Metadata %d 0 R" % metadata_id if metadata_id is not None else b""
    objects[catalog_id] = b"<< /Type /Catalog /Pages 2 0 R%s %s >>" % (catalog_extra, catalog)
    numbers = list(range(next_id, next_id + len(extra)))
    next_id += len(extra)

    def refer(dictionary):
        for n, number in reversed(list(enumerate(numbers))):  # @10 before @1
            dictionary = dictionary.replace(b"@%d" % n, b"%d 0 R" % number)
        return dictionary.replace(b"@P", b"%d 0 R" % kids[0])

    for key in (catalog_id, kids[0]):
        objects[key] = refer(objects[key])
    for number, body in zip(numbers, extra, strict=True):
        if isinstance(body, tuple):
            dictionary, data = body
            length = b" /Length %d >>\nstream\n" % len(data)
            objects[number] = refer(dictionary[:-2]) + length + data + b"\nendstream"
        else:
            objects[number] = refer(body)
    objects[page_tree] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % kid for kid in kids),
        pages,
    )
    objects[font] = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
    info_id = None
    if info:
        info_id, next_id = next_id, next_id + 1
        objects[info_id] = (
            b"<< "
            + b" ".join(b"/" + k.encode() + b" " + _string(v) for k, v in info.items())
            + b" >>"
        )
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n" % number + objects[number] + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % next_id
    for number in range(1, next_id):
        out += b"%010d 00000 n \n" % offsets[number]
    out += b"trailer\n<< /Size %d /Root 1 0 R" % next_id
    if info_id is not None:
        out += b" /Info %d 0 R" % info_id
    out += b" /ID [<0123456789abcdef0123456789abcdef> <0123456789abcdef0123456789abcdef>]"
    out += b" >>\nstartxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


#: A one-page PDF for tests that need any document.
PDF = make_pdf()
