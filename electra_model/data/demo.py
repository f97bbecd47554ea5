"""The embedded demo data: a generated news-style corpus and tagged sentences, so the default pipeline runs offline.

Nothing is shipped as files; everything is built from templates and word lists with a seeded
``random.Random``, so the same seed always gives the same data::

    from electra_model.data.demo import demo_corpus, demo_tagged, derive_seed
    documents = demo_corpus(400, seed=derive_seed(1234, "corpus"))    # ~300k characters of prose
    train = demo_tagged(1500, seed=derive_seed(1234, "train"))       # (tokens, IOB2 tags), PER/LOC/ORG/MISC

The tagged sentences become the NER demo split in :func:`electra_model.tasks.ner.data.demo_ner`; they are made
here, not there, because the corpus is rendered from the same templates.

The corpus and the NER sentences share templates and name lists, so pretraining on the corpus helps the NER
task, as it would on real data. The task is learnable but not trivial: names are combined from lists, so the
test split holds names never seen in training; entities span one to three words; words such as ``Jordan``,
``Washington`` or ``Reading`` are a person, a place or a plain word depending on context; sentences often start
with a capitalised word that is no entity.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable



# ---------------------------------------------------------------------------------------------- word lists
def _names(text: str, sep: str = ", ") -> tuple[str, ...]:
    """Word lists are written as running text, which keeps long lists of multi-word names readable."""
    return tuple(text.split(sep))


FIRST_NAMES = _names(
    "James Maria Ahmed Yuki Olga Pierre Chen Fatima Carlos Ingrid Kwame Priya Lars Sofia Dmitri Aisha Mateo "
    "Hannah Tomasz Elena Raj Grace Kenji Amara Luca Nadia Samuel Leila Viktor Isabel Oliver Mei Hassan Anna Diego "
    "Freya Jonas Zainab Marco Chloe Ibrahim Sarah Pavel Lucia Daniel Ayumi Felix Rosa Emeka Julia Thomas Nina "
    "Andrei Camille Omar Laura Hugo Mariam Stefan Clara Kofi Eva Ravi Alice Bruno Yasmin Peter Ines Goran Helen "
    "Arjun Lena Miguel Sophie Tariq Agnes Erik Beatriz Samir Martha Paulo Irene Kaito Esther Rafael Greta Adam "
    "Noor Simon Vera Jordan Florence George Victoria",
    sep=" ",
)
SURNAMES = _names(
    "Smith Garcia Nakamura Petrov Dubois Okafor Schneider Rossi Kowalski Haddad Johansson Silva Kim Novak Fischer "
    "Moreau Mensah Patel Ivanov Tanaka Berg Costa Horvath Lindqvist Mwangi Yilmaz Wright Alvarez Kaur Sato "
    "Bianchi Nowak Andersen Osei Mendes Weber Lambert Cohen Popescu Hughes Suzuki Romero Hansen Abara Vargas "
    "Murphy Keller Nilsson Ferreira Khan Baker Ortiz Lee Jensen Richter Santos Collins Ito Marino Dimitrov Walsh "
    "Mbeki Castillo Fontaine Kovac Brennan Takahashi Reyes Larsen Adeyemi Hoffmann Moretti Sokolov Gallagher "
    "Wagner Chowdhury Ramos Eriksson Obi Bauer Ricci Pereira Gunawardena Stewart Laurent Kuznetsov Nyambura "
    "Duarte Hale Washington Lincoln Jordan Chester Reading Sydney",
    sep=" ",
)
CITIES = _names(
    "London, Paris, Berlin, Madrid, Rome, Tokyo, Nairobi, Lagos, Cairo, Mumbai, Delhi, Beijing, Shanghai, Sydney, "
    "Melbourne, Toronto, Chicago, Boston, Washington, Lincoln, Reading, Chester, Lisbon, Vienna, Prague, Warsaw, "
    "Stockholm, Oslo, Helsinki, Dublin, Edinburgh, Manchester, Liverpool, Lyon, Marseille, Munich, Hamburg, "
    "Milan, Naples, Barcelona, Seville, Athens, Istanbul, Ankara, Amman, Beirut, Dubai, Riyadh, Karachi, Lahore, "
    "Dhaka, Bangkok, Jakarta, Manila, Seoul, Osaka, Hanoi, Singapore, Auckland, Perth, Vancouver, Montreal, "
    "Houston, Denver, Atlanta, Miami, Lima, Bogota, Santiago, Caracas, Havana, Accra, Dakar, Kampala, "
    "Addis Ababa, Johannesburg, Cape Town, Tel Aviv, Abu Dhabi, Kuala Lumpur, Hong Kong, New York, Los Angeles, "
    "San Francisco, New Delhi, Buenos Aires, Mexico City, Sao Paulo, Rio de Janeiro, Salt Lake City, "
    "Dar es Salaam, Frankfurt, Rotterdam, Antwerp, Geneva, Zurich"
)
COUNTRIES = _names(
    "France, Germany, Japan, Brazil, Kenya, Nigeria, Egypt, India, China, Australia, Canada, Mexico, Argentina, "
    "Spain, Italy, Poland, Sweden, Norway, Turkey, Jordan, Greece, Portugal, Ireland, Scotland, Russia, Ukraine, "
    "Romania, Hungary, Austria, Switzerland, Belgium, Netherlands, Denmark, Finland, Chile, Peru, Colombia, "
    "Venezuela, Cuba, Ghana, Senegal, Uganda, Ethiopia, Tanzania, Pakistan, Bangladesh, Thailand, Indonesia, "
    "Vietnam, Malaysia, Israel, Lebanon, Iran, Iraq, South Africa, New Zealand, United States, United Kingdom, "
    "Saudi Arabia, South Korea, Sri Lanka, Czech Republic, Ivory Coast, Costa Rica"
)
REGIONS = _names(
    "Europe, Asia, Africa, Balkans, Sahara, Alps, Andes, Himalayas, Caribbean, Mediterranean, Middle East, "
    "Gulf of Mexico, North Sea, Black Sea, Lake Victoria, River Thames, West Bank, Siberia, Patagonia, Amazon, "
    "Pacific, Atlantic, Baltic, Scandinavia, Bavaria, Catalonia"
)
NATIONALITIES = _names(
    "French, German, Japanese, Brazilian, Kenyan, Nigerian, Egyptian, Indian, Chinese, Australian, Canadian, "
    "Mexican, Argentine, Spanish, Italian, Polish, Swedish, Norwegian, Turkish, Jordanian, Greek, Portuguese, "
    "Irish, Scottish, Russian, Ukrainian, Dutch, Belgian, Danish, Finnish, Swiss, Austrian, Chilean, Peruvian, "
    "Ghanaian, Vietnamese, British, American, Saudi, Israeli, European, South African, South Korean, New Zealand"
)
FIXED_EVENTS = _names(
    "World Cup, Olympic Games, Tour de France, Champions League, Davis Cup, Ryder Cup, Super Bowl, Africa Cup, "
    "Asian Games, Commonwealth Games, Euro 2024, Wimbledon, Cold War, Ramadan, Christmas, Easter, Nobel Prize, "
    "Oscars"
)
COMPANY_STEMS = _names(
    "Northwind Bluestone Silverline Redwood Atlas Orion Zenith Pioneer Horizon Granite Apex Meridian Vertex "
    "Crescent Falcon Harbor Sterling Nova Aurora Titan Evergreen Beacon Cobalt Keystone Lumen Quantum Polaris "
    "Sapphire Trident Halcyon Ironbridge Oakmont Brightwater Westfield Eastgate Clearview Highland Riverside "
    "Goldcrest",
    sep=" ",
)
COMPANY_SUFFIXES = _names(
    "Group Holdings Energy Motors Airlines Bank Systems Pharmaceuticals Telecom Capital Foods Mining Steel "
    "Logistics Media Insurance Chemicals Shipping Electric Partners",
    sep=" ",
)
FIXED_ORGANISATIONS = _names(
    "United Nations, European Union, World Bank, NATO, Red Cross, Interpol, OPEC, UNICEF, Reuters, "
    "World Health Organization, International Monetary Fund, Supreme Court, African Union, FIFA, Greenpeace, "
    "Amnesty International, Security Council, Central Bank, Parliament, Senate"
)
PARTIES = _names(
    "Labour Party, Green Party, Liberal Party, Conservative Party, Social Democrats, National Front, "
    "Democratic Alliance, People 's Party, Freedom Party, Workers ' Party, Christian Democrats"
)
CLUB_PATTERNS = ("{} United", "{} Rovers", "{} City", "Real {}", "FC {}", "{} Wanderers", "Sporting {}", "{} Athletic")
INSTITUTION_PATTERNS = ("University of {}", "Bank of {}", "{} Stock Exchange", "Museum of {}")
EVENT_PATTERNS = ("{nat} Open", "{nat} Grand Prix", "{city} Marathon", "{city} Film Festival", "{city} Summit")

DAYS = _names("Monday Tuesday Wednesday Thursday Friday Saturday Sunday", sep=" ")
MONTHS = _names("January February March April May June July August September October November December", sep=" ")


# Composed names (clubs, institutions, events) take single-word parts, so that no entity is longer than three words.
ONE_WORD_CITIES = tuple(city for city in CITIES if " " not in city)
ONE_WORD_PLACES = ONE_WORD_CITIES + tuple(country for country in COUNTRIES if " " not in country)
ONE_WORD_NATIONALITIES = tuple(nationality for nationality in NATIONALITIES if " " not in nationality)


# ------------------------------------------------------------------------------------------------ templates
# Slots in braces become entities (PER, SURNAME, LOC, CITY, COUNTRY, ORG, COMPANY, CLUB, PARTY, NAT, EVENT, MISC)
# or variable plain words (NUM, PCT, SCORE, YEAR, DAY, MONTH, TIME). Tokens are separated by single spaces.
TEMPLATES: dict[str, tuple[str, ...]] = {
    "business": (
        "{COMPANY} said on {DAY} that its net profit rose {PCT} percent to {NUM} million dollars .",
        "Shares in {COMPANY} fell {PCT} percent in {CITY} after the company warned of weak demand in {COUNTRY} .",
        "{PER} , chief executive of {COMPANY} , told reporters in {CITY} that the merger would close in {MONTH} .",
        "Analysts at {COMPANY} expect the {NAT} economy to grow by {PCT} percent this year .",
        "{COMPANY} agreed to buy {COMPANY} for {NUM} million dollars , the companies said in a joint statement .",
        "The deal makes {COMPANY} the largest supplier in {LOC} , according to {PER} , an analyst at {ORG} .",
        "{COMPANY} will open a new factory near {CITY} and hire {NUM} workers , {PER} said .",
        "Investors sold {NAT} bonds on {DAY} after the {ORG} kept interest rates unchanged .",
        "Mr. {SURNAME} joined {COMPANY} in {YEAR} after ten years at {ORG} in {CITY} .",
        "{PER} , who founded {COMPANY} in {YEAR} , plans to step down in {MONTH} .",
        "Exports from {COUNTRY} to {COUNTRY} rose sharply last quarter , data from the {ORG} showed .",
        "Oil prices climbed after {ORG} said output in the {LOC} would fall .",
        "Trading in {CITY} was thin ahead of the {EVENT} , dealers said .",
        "Ms. {SURNAME} said {COMPANY} had no plans to leave {COUNTRY} despite the new tax .",
        "Profits at the {NAT} unit of {COMPANY} doubled to {NUM} million euros .",
    ),
    "politics": (
        "{NAT} President {PER} arrived in {CITY} on {DAY} for talks with {PER} .",
        "Foreign minister {PER} said {COUNTRY} would not accept the proposal from the {ORG} .",
        "The {ORG} voted to send observers to {COUNTRY} before the {MONTH} election .",
        "Thousands of people marched through {CITY} on {DAY} to protest against the {NAT} government .",
        "{PER} of the {PARTY} won {PCT} percent of the vote in {LOC} , officials said .",
        "Officials in {CITY} said {NUM} people were hurt when a bus overturned near {CITY} .",
        "{COUNTRY} and {COUNTRY} signed a trade agreement at the {ORG} headquarters in {CITY} .",
        "Police arrested {NUM} people in {CITY} after clashes between supporters of {PER} and the {PARTY} .",
        "The {NAT} ambassador to {COUNTRY} , {PER} , was summoned by the foreign ministry .",
        "Speaking in {NAT} on state television , {PER} called for calm in {LOC} .",
        "{PER} told the {ORG} that aid for {LOC} must reach {NUM} families before {MONTH} .",
        "Critics of {PER} say the reform will hurt farmers in northern {COUNTRY} .",
        "Earlier , {ORG} spokesman {PER} said the talks in {CITY} had made progress .",
        "Leaders of the {PARTY} met in {CITY} to choose a successor to {PER} .",
        "Mr. {SURNAME} is expected to visit {COUNTRY} and {COUNTRY} later this month .",
    ),
    "sports": (
        "{CLUB} beat {CLUB} {SCORE} in {CITY} on {DAY} .",
        "{PER} scored twice as {CLUB} won {SCORE} at home to {CLUB} .",
        "{PER} of {COUNTRY} won the {EVENT} on {DAY} , beating {PER} in the final .",
        "{NAT} striker {PER} has signed a three-year contract with {CLUB} .",
        "The {EVENT} will be held in {CITY} in {YEAR} , organisers said .",
        "{PER} ( {COUNTRY} ) {TIME}",
        "{CLUB} coach {PER} said his team had been unlucky not to win in {CITY} .",
        "{PER} , the {NAT} champion , withdrew from the {EVENT} with a knee injury .",
        "Fans in {CITY} celebrated late into the night after {COUNTRY} reached the {EVENT} final .",
        "{SURNAME} , who moved from {CLUB} in {MONTH} , has not played since the {EVENT} .",
        "{COUNTRY} will host {COUNTRY} in a friendly in {CITY} next week .",
        "{COUNTRY} {SCORE} {COUNTRY}",
        "Results from the {EVENT} in {CITY} on {DAY} :",
        "{SURNAME} missed a penalty and {CLUB} lost {SCORE} to {CLUB} .",
        "{PER} set a {NAT} record of {TIME} in {CITY} .",
    ),
    "world": (
        "Heavy rain caused flooding across {LOC} , forcing {NUM} people from their homes .",
        "{PER} , a professor at the {ORG} , said the discovery could change how scientists study the {LOC} .",
        "A spokesman for the {ORG} in {CITY} said aid flights to {LOC} would resume on {DAY} .",
        "{PER} 's new novel , set in {CITY} , won praise from {NAT} critics .",
        "Reading the report in {CITY} , {PER} said the {ORG} had ignored earlier warnings .",
        "Researchers from the {ORG} and the {ORG} published the study on {DAY} .",
        "Visitors to {CITY} can take a train to {CITY} in under two hours .",
        "The {NAT} film won the top prize at the {EVENT} .",
        "Witnesses said the fire started in a warehouse owned by {COMPANY} near {CITY} .",
        "Born in {CITY} in {YEAR} , {PER} studied law in {CITY} before moving to {COUNTRY} .",
        "A source close to {ORG} said nothing had been decided .",
        "The {NAT} community in {CITY} raised {NUM} dollars for victims of the earthquake in {COUNTRY} .",
        "{PER} flew from {CITY} to {CITY} on {DAY} to attend the {EVENT} .",
        "Doctors from the {ORG} arrived in {LOC} on {DAY} , {PER} said .",
        "Celebrations for {EVENT} drew crowds to the centre of {CITY} .",
    ),
    "plain": (
        "The company did not give details .",
        "Prices were little changed in early trading on {DAY} .",
        "Officials said the investigation would take several weeks .",
        "He said he expected a decision by {MONTH} .",
        "Turnout was estimated at {PCT} percent .",
        "Analysts said the figures were better than expected .",
        "Police said {NUM} people had been detained .",
        "Shares closed {PCT} percent higher on {DAY} .",
        "Meanwhile , talks will resume in {MONTH} .",
        "Despite the rain , the match went ahead as planned .",
    ),
}
ENTITY_SLOTS = {
    "PER": "PER",
    "SURNAME": "PER",
    "LOC": "LOC",
    "CITY": "LOC",
    "COUNTRY": "LOC",
    "ORG": "ORG",
    "COMPANY": "ORG",
    "CLUB": "ORG",
    "PARTY": "ORG",
    "NAT": "MISC",
    "EVENT": "MISC",
    "MISC": "MISC",
}
SLOT = re.compile(r"\{([A-Z]+)\}")
Pick = Callable[[str], tuple[str, ...]]
Tagged = tuple[tuple[str, ...], tuple[str, ...]]
"""A sentence's tokens and their IOB2 tags, one to one."""


# -------------------------------------------------------------------------------------------------- reviews
# Short opinionated or factual sentences about films, meals, trips: the corpus holds documents of them, and the
# classification demo (:mod:`electra_model.data.demo_classification`) labels them, so the opinion words are whole
# tokens of the tokenizer and known to the pretrained model, as a sentiment task's words are in real pretraining data.
# ``{SUBJ}`` / ``{subj}`` is a subject (capitalised or not), ``{OP}`` an opinion (or descriptive) word.
POSITIVE = ("excellent", "wonderful", "superb", "delightful", "brilliant", "great", "enjoyable", "charming")
NEGATIVE = ("terrible", "awful", "dreadful", "boring", "disappointing", "poor", "dull", "clumsy")
DESCRIPTIVE = ("long", "short", "new", "old", "quiet", "busy", "small", "large")
SUBJECTS = (
    "the film", "the new album", "this restaurant", "the hotel in {CITY}", "the match in {CITY}", "the service",
    "the book", "her performance", "the new phone", "the concert in {CITY}", "the museum", "the play",
    "the show", "the meal", "the trip to {CITY}", "his latest novel", "the exhibition", "the second season",
)
OPINION_TEMPLATES = (
    "{SUBJ} was {OP} .",
    "I found {subj} {OP} .",
    "Honestly , {subj} was {OP} from start to finish .",
    "Critics called {subj} {OP} , and I agree .",
    "We thought {subj} was {OP} and {OP} .",
    "After the visit on {DAY} , {subj} seemed {OP} to all of us .",
    "{SUBJ} is {OP} , says everyone who saw it .",
)
NEGATED_TEMPLATES = (
    "{SUBJ} was not {OP} at all .",
    "I would not call {subj} {OP} .",
    "Nobody found {subj} {OP} .",
)
FACTUAL_TEMPLATES = (
    "{SUBJ} opens on {DAY} .",
    "{SUBJ} lasts about two hours .",
    "{SUBJ} was reviewed in {CITY} in {MONTH} .",
    "Tickets for {subj} go on sale in {MONTH} .",
    "{SUBJ} is listed in the guide for {CITY} .",
    "I read about {subj} on {DAY} .",
    "{SUBJ} will be discussed on the radio in {MONTH} .",
)
SENTIMENTS = ("negative", "neutral", "positive")
NEGATION_SHARE = 1 / 6
REVIEW_SHARE = 1 / 6


def _fill_review(template: str, rng: random.Random, words: tuple[str, ...] = ()) -> str:
    """Fill a review template; every ``{OP}`` draws one of ``words``."""
    subject = rng.choice(SUBJECTS).replace("{CITY}", rng.choice(CITIES))
    text = template.replace("{SUBJ}", subject[0].upper() + subject[1:]).replace("{subj}", subject)
    text = text.replace("{DAY}", rng.choice(DAYS)).replace("{MONTH}", rng.choice(MONTHS))
    text = text.replace("{CITY}", rng.choice(CITIES))
    while "{OP}" in text:
        text = text.replace("{OP}", rng.choice(words), 1)
    return text


def review(rng: random.Random, sentiment: str) -> str:
    """A sentence of ``sentiment`` (one of :data:`SENTIMENTS`), tokens separated by spaces.

    Positive and negative: an opinion word of that polarity, or (one in six) a negated word of the other polarity,
    which a bag of words gets wrong. Neutral: half factual statements, half the opinion templates with a
    descriptive word (``The film was long .``), so the label is read from the word, not from the sentence's shape.
    """
    if sentiment == "neutral":
        if rng.random() < 0.5:
            return _fill_review(rng.choice(FACTUAL_TEMPLATES), rng)
        return _fill_review(rng.choice(OPINION_TEMPLATES), rng, DESCRIPTIVE)
    same, other = (POSITIVE, NEGATIVE) if sentiment == "positive" else (NEGATIVE, POSITIVE)
    if rng.random() < NEGATION_SHARE:
        return _fill_review(rng.choice(NEGATED_TEMPLATES), rng, other)
    return _fill_review(rng.choice(OPINION_TEMPLATES), rng, same)


# --------------------------------------------------------------------------------------------- slot values
def _person(rng: random.Random) -> str:
    """Mostly full names, sometimes a surname alone or with an initial, as news text refers to people."""
    first, last = rng.choice(FIRST_NAMES), rng.choice(SURNAMES)
    return rng.choices((f"{first} {last}", last, f"{first} {rng.choice('ABCDEFGHJKLMNPRSTW')}. {last}"), (6, 2, 1))[0]


def _company(rng: random.Random) -> str:
    """Invented names, so a company is recognised by its shape and context rather than by memory."""
    stem = rng.choice(COMPANY_STEMS) if rng.random() < 0.75 else rng.choice(SURNAMES)
    return f"{stem} {rng.choice(COMPANY_SUFFIXES)}"


def _club(rng: random.Random) -> str:
    """Clubs are named after cities: the same word is LOC alone and part of an ORG here."""
    return rng.choice(CLUB_PATTERNS).format(rng.choice(ONE_WORD_CITIES))


def _organisation(rng: random.Random) -> str:
    """Any kind of organisation, for slots where the context does not say which."""
    kind = rng.choices(("company", "institution", "fixed", "club", "party"), (4, 2, 2, 1, 1))[0]
    if kind == "company":
        return _company(rng)
    if kind == "institution":
        return rng.choice(INSTITUTION_PATTERNS).format(rng.choice(ONE_WORD_PLACES))
    if kind == "fixed":
        return rng.choice(FIXED_ORGANISATIONS)
    return _club(rng) if kind == "club" else rng.choice(PARTIES)


def _event(rng: random.Random) -> str:
    """Well-known events plus invented ones built from nationalities and cities."""
    if rng.random() < 0.4:
        return rng.choice(FIXED_EVENTS)
    return rng.choice(EVENT_PATTERNS).format(nat=rng.choice(ONE_WORD_NATIONALITIES), city=rng.choice(ONE_WORD_CITIES))


def _location(rng: random.Random) -> str:
    """Cities, countries and regions, for slots where the context does not say which."""
    return rng.choice(rng.choices((CITIES, COUNTRIES, REGIONS), (4, 4, 2))[0])


_VALUES: dict[str, Callable[[random.Random], str]] = {
    "PER": _person,
    "SURNAME": lambda rng: rng.choice(SURNAMES),
    "LOC": _location,
    "CITY": lambda rng: rng.choice(CITIES),
    "COUNTRY": lambda rng: rng.choice(COUNTRIES),
    "ORG": _organisation,
    "COMPANY": _company,
    "CLUB": _club,
    "PARTY": lambda rng: rng.choice(PARTIES),
    "NAT": lambda rng: rng.choice(NATIONALITIES),
    "EVENT": _event,
    "MISC": lambda rng: rng.choice(NATIONALITIES) if rng.random() < 0.6 else _event(rng),
    "NUM": lambda rng: str(rng.choice((rng.randint(2, 99), rng.randint(100, 9999)))),
    "PCT": lambda rng: f"{rng.randint(0, 40)}.{rng.randint(0, 9)}",
    "SCORE": lambda rng: f"{rng.randint(0, 5)}-{rng.randint(0, 5)}",
    "YEAR": lambda rng: str(rng.randint(1950, 2025)),
    "DAY": lambda rng: rng.choice(DAYS),
    "MONTH": lambda rng: rng.choice(MONTHS),
    "TIME": lambda rng: f"{rng.randint(1, 3)}:{rng.randint(0, 59):02d}.{rng.randint(0, 99):02d}",
}


def _fresh_values(rng: random.Random) -> Pick:
    """A new value for every slot: how the NER sentences are filled, so names recombine freely."""
    return lambda slot: tuple(_VALUES[slot](rng).split())


def _document_cast(rng: random.Random) -> Pick:
    """Values that recur within one document (later often by surname alone), as a news story keeps its cast."""
    cast: dict[str, list[tuple[str, ...]]] = {}
    last: dict[str, tuple[str, ...]] = {}

    def pick(slot: str) -> tuple[str, ...]:
        known = cast.setdefault(slot, [])
        others = [value for value in known if value != last.get(slot)]  # "X agreed to buy X" reads as nonsense
        if others and slot in ENTITY_SLOTS and rng.random() < 0.5:
            value = rng.choice(others)
            last[slot] = value
            return value[-1:] if slot == "PER" and rng.random() < 0.5 else value
        value = last[slot] = tuple(_VALUES[slot](rng).split())
        known.append(value)
        return value

    return pick


def _render(template: str, pick: Pick) -> Tagged:
    """Fill a template's slots and tag entity slots in IOB2; every other token is ``O``."""
    tokens: list[str] = []
    tags: list[str] = []
    for word in template.split():
        slot = SLOT.fullmatch(word)
        if slot is None:
            tokens.append(word)
            tags.append("O")
            continue
        value = pick(slot.group(1))
        label = ENTITY_SLOTS.get(slot.group(1))
        tokens.extend(value)
        tags.extend(["O"] * len(value) if label is None else [f"B-{label}"] + [f"I-{label}"] * (len(value) - 1))
    return tuple(tokens), tuple(tags)


# ------------------------------------------------------------------------------------------------- outputs
def derive_seed(seed: int, purpose: str) -> int:
    """An independent seed per purpose (corpus, train, valid, test), so the splits differ but stay reproducible."""
    return int.from_bytes(hashlib.sha256(f"{seed}/{purpose}".encode()).digest()[:8], "big")


def detokenize(tokens: tuple[str, ...]) -> str:
    """Join tokens as prose: no space before punctuation or ``'s``, none inside parentheses."""
    text = " ".join(tokens)
    return re.sub(r"\( ", "(", re.sub(r" ('s|'|[.,:;)])(?=\s|$)", r"\1", text))


def _reviews(rng: random.Random) -> str:
    """A page of reader reviews: two to four paragraphs of three to six sentences of any sentiment."""
    paragraphs = [
        " ".join(detokenize(tuple(review(rng, rng.choice(SENTIMENTS)).split())) for _ in range(rng.randint(3, 6)))
        for _ in range(rng.randint(2, 4))
    ]
    return "\n".join(paragraphs)


def _document(rng: random.Random) -> str:
    """A story on one topic: two to four paragraphs of two to four sentences, one paragraph per line; one
    document in six is a page of reviews instead."""
    if rng.random() < REVIEW_SHARE:
        return _reviews(rng)
    topic = rng.choice(("business", "politics", "sports", "world"))
    pick = _document_cast(rng)
    paragraphs = []
    for _ in range(rng.randint(2, 4)):
        templates = [
            rng.choice(TEMPLATES[topic] if rng.random() < 0.8 else TEMPLATES["plain"]) for _ in range(rng.randint(2, 4))
        ]
        paragraphs.append(" ".join(detokenize(_render(template, pick)[0]) for template in templates))
    return "\n".join(paragraphs)


def demo_corpus(n_documents: int, seed: int) -> list[str]:
    """Documents of news-style prose and reviews for pretraining; paragraphs are separated by newlines."""
    rng = random.Random(seed)
    return [_document(rng) for _ in range(n_documents)]


def demo_tagged(n_sentences: int, seed: int) -> list[Tagged]:
    """IOB2-tagged sentences over all topics; about one in seven has no entity, as in real news."""
    rng = random.Random(seed)
    templates = [template for group in TEMPLATES.values() for template in group]
    pick = _fresh_values(rng)
    return [_render(rng.choice(templates), pick) for _ in range(n_sentences)]
