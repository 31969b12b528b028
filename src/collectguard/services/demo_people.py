"""Synthetic people for the demo portfolio: names, test-range phone numbers, valid resident IDs.

Phone numbers come only from ranges that cannot ring a real person, or, where a country publishes
none, from a narrow block that the demo never dials (collectguard's demo sends nothing):

* US: 555-0100…555-0199 in any area code, reserved by NANPA for fiction.
* Germany: Berlin (0)30 23125 000…999, a Bundesnetzagentur "drama number" block.
* France: 01 99 00 xx xx, kept by ARCEP for audiovisual works. Spain publishes no such range,
  so Madrid demo borrowers carry French fiction numbers.
* China publishes no fictional range. The demo uses 138-0000-0000…138-0999-9999 (the
  ``1380000 1234`` style), the first thousand blocks of China Mobile's 138 prefix, which
  libphonenumber accepts as valid mobiles. They are not known to be unallocated, so they are safe
  only because they never leave the demo: generated, not harvested, stored encrypted, shown
  masked, and no channel adapter sends to demo data. Never point a real SMS or voice gateway at
  a demo database.

Resident ID numbers are built with a real region code, a plausible birth date and the
ISO 7064 MOD 11-2 check character, so they pass validation like real ones; being random they may
coincide with a real person's number, which is why they too are only stored encrypted.
"""

from __future__ import annotations

import datetime as dt
import random

from collectguard.domain.validation import cn_id_check_char

FAMILY = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
          "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴")
# Weights: the ten commonest family names cover about 40 % of the population.
FAMILY_WEIGHTS = tuple([7.0, 7.0, 6.5, 5.5, 4.5] + [2.0] * 5 + [1.0] * (len(FAMILY) - 10))
GIVEN_M = tuple("伟 强 磊 军 洋 勇 杰 涛 明 超 刚 平 辉 鹏 华 飞 鑫 波 斌 宇 浩 凯 健 俊 帆 "
                "建国 志强 晓东 海涛 子轩 浩然 宇航 文博 家豪 俊杰 国庆 建华 永刚 振宇 天佑".split())
GIVEN_F = tuple("芳 娜 敏 静 丽 艳 娟 霞 婷 玲 燕 丹 萍 红 洁 琳 颖 倩 雪 慧 秀英 桂英 晓燕 丽娟 雨涵 "
                "欣怡 梓涵 诗琪 佳怡 子涵 美玲 玉兰 海燕 春梅 思雨 婉清 雅琴 梦瑶 嘉怡 若曦".split())
UYGHUR_M = ("买买提·艾力", "艾力·吐尔逊", "买合木提·阿不都", "阿不都热合曼·依明", "吐尔洪·卡德尔")
UYGHUR_F = ("阿依古丽·买买提", "古丽娜尔·艾山", "热依拉·吾斯曼", "迪丽娜尔·阿不来提", "帕提古丽·热合曼")

# Region codes (GB/T 2260) for the ID numbers, by the borrower's time zone.
CN_REGIONS = {
    "Asia/Shanghai": ("110101", "110105", "310104", "310115", "440305", "440106", "330106", "320102",
                      "510107", "420106", "370102", "410105", "430104", "350203", "500103", "610113"),
    "Asia/Urumqi": ("650102", "650103", "650104", "652801"),
}

US_FIRST = ("James", "Mary", "Michael", "Patricia", "Robert", "Jennifer", "David", "Linda", "Emily",
            "Daniel", "Sarah", "Carlos", "Maria", "Kevin", "Ashley", "Jessica", "Brian", "Aisha")
US_LAST = ("Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
           "Martinez", "Carter", "Nguyen", "Walker", "Young", "Lopez", "Hill", "Scott", "Kim")
US_AREAS = {"America/New_York": ("212", "646", "718"), "America/Los_Angeles": ("213", "310", "323"),
            "America/Chicago": ("312", "773")}

EU_PEOPLE = {
    "Europe/Berlin": ("de-DE", ("Lukas", "Anna", "Jonas", "Lea", "Felix", "Marie", "Paul", "Sophie"),
                      ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Wagner", "Becker", "Hoffmann")),
    "Europe/Paris": ("fr-FR", ("Louis", "Camille", "Hugo", "Chloé", "Lucas", "Manon", "Jules", "Léa"),
                     ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand")),
    "Europe/Madrid": ("es-ES", ("Hugo", "Lucía", "Martín", "Sofía", "Pablo", "Martina", "Diego", "Paula"),
                      ("García", "Fernández", "González", "Rodríguez", "López", "Martínez", "Sánchez",
                       "Pérez")),
}


class PhoneBook:
    """Hands out demo phone numbers in E.164, cycling through each test range."""

    def __init__(self) -> None:
        self._cn = 0
        self._de = 0
        self._fr = 0

    def cn(self) -> str:
        n = self._cn % 10_000_000  # distinct up to ten million people, then the range repeats
        self._cn += 1
        return f"+86138{n:08d}"

    def us(self, rng: random.Random, tz: str) -> str:
        return f"+1{rng.choice(US_AREAS[tz])}55501{rng.randint(0, 99):02d}"

    def eu(self, tz: str) -> str:
        if tz == "Europe/Berlin":
            n = self._de % 1000
            self._de += 1
            return f"+493023125{n:03d}"
        n = self._fr % 10_000
        self._fr += 1
        return f"+3319900{n:04d}"


def cn_name(rng: random.Random, *, female: bool, family: str | None = None, uyghur: bool = False) -> str:
    if uyghur:
        return rng.choice(UYGHUR_F if female else UYGHUR_M)
    fam = family or rng.choices(FAMILY, weights=FAMILY_WEIGHTS)[0]
    return fam + rng.choice(GIVEN_F if female else GIVEN_M)


def cn_resident_id(rng: random.Random, *, tz: str, born: dt.date, female: bool) -> str:
    """A valid 18-digit resident ID: region, birth date, sequence (odd for men), check character."""
    seq = rng.randint(0, 499) * 2 + (0 if female else 1)
    first17 = f"{rng.choice(CN_REGIONS[tz])}{born:%Y%m%d}{seq:03d}"
    return first17 + cn_id_check_char(first17)


def person(rng: random.Random, phones: PhoneBook, *, ref: dt.date) -> dict[str, object]:
    """One borrower's identity: mostly CN (Asia/Shanghai, some Asia/Urumqi), a few US and EU."""
    female = rng.random() < 0.45
    roll = rng.random()
    if roll < 0.94:
        tz = "Asia/Shanghai" if rng.random() < 0.95 else "Asia/Urumqi"
        born = ref - dt.timedelta(days=rng.randint(20 * 365 + 5, 55 * 365))
        return {"jurisdiction": "CN", "timezone": tz, "language": "zh-CN",
                "name": cn_name(rng, female=female, uyghur=tz == "Asia/Urumqi" and rng.random() < 0.5),
                "phone": phones.cn(), "id_number": cn_resident_id(rng, tz=tz, born=born, female=female)}
    if roll < 0.97:
        tz = rng.choice(tuple(US_AREAS))
        return {"jurisdiction": "US", "timezone": tz, "language": "es-US" if rng.random() < 0.1 else "en-US",
                "name": f"{rng.choice(US_FIRST)} {rng.choice(US_LAST)}", "phone": phones.us(rng, tz),
                "id_number": None}
    tz = rng.choice(tuple(EU_PEOPLE))
    lang, first, last = EU_PEOPLE[tz]
    return {"jurisdiction": "EU", "timezone": tz, "language": lang,
            "name": f"{rng.choice(first)} {rng.choice(last)}", "phone": phones.eu(tz), "id_number": None}


def contact_person(rng: random.Random, phones: PhoneBook, borrower: dict[str, object], relation: str) -> \
        tuple[str, str]:
    """(name, phone) of someone the borrower knows, in the borrower's country."""
    jur, tz, name = borrower["jurisdiction"], str(borrower["timezone"]), str(borrower["name"])
    if jur == "CN":
        same_family = relation == "relative" and "·" not in name
        return cn_name(rng, female=rng.random() < 0.5, family=name[0] if same_family else None), phones.cn()
    if jur == "US":
        last = name.split()[-1] if relation in ("spouse", "relative") else rng.choice(US_LAST)
        return f"{rng.choice(US_FIRST)} {last}", phones.us(rng, tz)
    _, first, lasts = EU_PEOPLE[tz]
    last = name.split()[-1] if relation in ("spouse", "relative") else rng.choice(lasts)
    return f"{rng.choice(first)} {last}", phones.eu(tz)
