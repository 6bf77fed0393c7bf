"""Vocabulary for the synthetic sample: names, places, products, campaigns.

Small, hand-written lists (frequencies roughly follow published Chinese surname
tables) so the generator has no data download and stays deterministic.
"""

from __future__ import annotations

# (surname, pinyin, weight) — the most common surnames, weights ~ population share (%).
SURNAMES = [
    ("王", "wang", 7.1), ("李", "li", 7.0), ("张", "zhang", 6.7), ("刘", "liu", 5.4),
    ("陈", "chen", 4.5), ("杨", "yang", 3.1), ("黄", "huang", 2.2), ("赵", "zhao", 2.0),
    ("吴", "wu", 1.9), ("周", "zhou", 1.9), ("徐", "xu", 1.3), ("孙", "sun", 1.2),
    ("马", "ma", 1.1), ("朱", "zhu", 1.1), ("胡", "hu", 1.0), ("郭", "guo", 1.0),
    ("何", "he", 0.9), ("林", "lin", 0.9), ("高", "gao", 0.9), ("罗", "luo", 0.8),
    ("郑", "zheng", 0.8), ("梁", "liang", 0.7), ("谢", "xie", 0.6), ("宋", "song", 0.6),
    ("唐", "tang", 0.6), ("许", "xu", 0.5), ("韩", "han", 0.5), ("冯", "feng", 0.5),
    ("邓", "deng", 0.5), ("曹", "cao", 0.5), ("彭", "peng", 0.5), ("曾", "zeng", 0.4),
    ("肖", "xiao", 0.4), ("田", "tian", 0.4), ("董", "dong", 0.4), ("袁", "yuan", 0.4),
    ("潘", "pan", 0.4), ("于", "yu", 0.4), ("蒋", "jiang", 0.4), ("蔡", "cai", 0.4),
    ("余", "yu", 0.3), ("杜", "du", 0.3), ("叶", "ye", 0.3), ("程", "cheng", 0.3),
    ("苏", "su", 0.3), ("魏", "wei", 0.3), ("吕", "lv", 0.3), ("丁", "ding", 0.3),
    ("任", "ren", 0.3), ("沈", "shen", 0.3), ("欧阳", "ouyang", 0.05), ("司马", "sima", 0.02),
]

# Given-name characters (char, pinyin); female- and male-leaning plus neutral.
GIVEN_FEMALE = [
    ("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"), ("丽", "li"), ("艳", "yan"),
    ("娟", "juan"), ("霞", "xia"), ("婷", "ting"), ("雪", "xue"), ("琳", "lin"), ("颖", "ying"),
    ("倩", "qian"), ("怡", "yi"), ("欣", "xin"), ("悦", "yue"), ("晶", "jing"), ("佳", "jia"),
    ("雅", "ya"), ("萱", "xuan"), ("梦", "meng"), ("璐", "lu"), ("瑶", "yao"), ("蕾", "lei"),
    ("薇", "wei"), ("菲", "fei"), ("诗", "shi"), ("涵", "han"), ("梓", "zi"), ("妍", "yan"),
    ("晓", "xiao"), ("慧", "hui"), ("玲", "ling"), ("燕", "yan"), ("秀", "xiu"), ("美", "mei"),
]
GIVEN_MALE = [
    ("伟", "wei"), ("强", "qiang"), ("磊", "lei"), ("军", "jun"), ("洋", "yang"), ("勇", "yong"),
    ("杰", "jie"), ("涛", "tao"), ("明", "ming"), ("超", "chao"), ("刚", "gang"), ("平", "ping"),
    ("辉", "hui"), ("鹏", "peng"), ("华", "hua"), ("飞", "fei"), ("鑫", "xin"), ("波", "bo"),
    ("斌", "bin"), ("宇", "yu"), ("浩", "hao"), ("凯", "kai"), ("俊", "jun"), ("帆", "fan"),
    ("博", "bo"), ("子", "zi"), ("晨", "chen"), ("轩", "xuan"), ("然", "ran"), ("峰", "feng"),
]

# (province, city, city pinyin, weight, districts)
CITIES = [
    ("上海市", "上海市", "shanghai", 9, ["浦东新区", "徐汇区", "静安区", "闵行区", "长宁区"]),
    ("北京市", "北京市", "beijing", 8, ["朝阳区", "海淀区", "东城区", "丰台区", "西城区"]),
    ("广东省", "广州市", "guangzhou", 7, ["天河区", "越秀区", "海珠区", "番禺区"]),
    ("广东省", "深圳市", "shenzhen", 7, ["南山区", "福田区", "罗湖区", "宝安区"]),
    ("浙江省", "杭州市", "hangzhou", 6, ["西湖区", "上城区", "滨江区", "余杭区"]),
    ("四川省", "成都市", "chengdu", 5, ["锦江区", "武侯区", "高新区", "青羊区"]),
    ("江苏省", "南京市", "nanjing", 4, ["鼓楼区", "玄武区", "建邺区", "秦淮区"]),
    ("江苏省", "苏州市", "suzhou", 4, ["姑苏区", "工业园区", "吴中区"]),
    ("湖北省", "武汉市", "wuhan", 4, ["武昌区", "江汉区", "洪山区"]),
    ("重庆市", "重庆市", "chongqing", 4, ["渝中区", "江北区", "南岸区"]),
    ("陕西省", "西安市", "xian", 3, ["雁塔区", "碑林区", "未央区"]),
    ("天津市", "天津市", "tianjin", 3, ["和平区", "南开区", "河西区"]),
    ("湖南省", "长沙市", "changsha", 3, ["岳麓区", "芙蓉区", "天心区"]),
    ("福建省", "厦门市", "xiamen", 2, ["思明区", "湖里区"]),
    ("山东省", "青岛市", "qingdao", 2, ["市南区", "崂山区"]),
    ("辽宁省", "沈阳市", "shenyang", 2, ["和平区", "沈河区"]),
    ("香港特别行政区", "香港", "hongkong", 3, ["中西区", "湾仔区", "油尖旺区", "沙田区"]),
]

ROADS = ["人民路", "中山路", "解放路", "建设路", "和平路", "南京路", "长江路", "淮海路",
         "新华路", "文化路", "科技路", "滨江路", "世纪大道", "光明路", "青年路", "友谊路"]

CATEGORIES = ["护肤", "彩妆", "香水", "洗护", "身体护理", "男士", "礼盒", "小样"]
CATEGORY_EN = {"护肤": "skincare", "彩妆": "makeup", "香水": "fragrance", "洗护": "haircare",
               "身体护理": "bodycare", "男士": "men", "礼盒": "gift_set", "小样": "samples"}
PRODUCTS = {
    "护肤": ["修护精华液30ml", "保湿面霜50ml", "洁面乳120g", "眼霜15ml", "爽肤水200ml"],
    "彩妆": ["丝绒口红", "气垫粉底", "眼影盘", "定妆散粉", "睫毛膏"],
    "香水": ["淡香水50ml", "香氛礼盒", "旅行装香水10ml"],
    "洗护": ["洗发水500ml", "护发素500ml", "发膜200ml"],
    "身体护理": ["身体乳250ml", "沐浴露500ml", "护手霜套装"],
    "男士": ["男士洁面", "男士乳液", "剃须啫喱"],
    "礼盒": ["节日限定礼盒", "七夕礼盒", "双十一礼盒"],
    "小样": ["体验装三件套", "试用装"],
}

EMAIL_DOMAINS = ["qq.com", "163.com", "126.com", "gmail.com", "outlook.com", "sina.com",
                 "foxmail.com", "hotmail.com", "icloud.com"]
EMAIL_DOMAIN_WEIGHTS = [30, 20, 10, 10, 8, 6, 6, 5, 5]

MOBILE_PREFIXES = ["130", "131", "132", "133", "135", "136", "137", "139", "150", "151",
                   "152", "155", "156", "158", "159", "166", "176", "177", "180", "181",
                   "182", "183", "185", "186", "187", "188", "189", "191", "198", "199"]
HK_MOBILE_FIRST = ["5", "6", "9"]

# Placeholders that real Chinese exports are full of; the cleaner must flag them.
PLACEHOLDER_PHONES = ["13800000000", "13888888888", "11111111111"]
PLACEHOLDER_EMAILS = ["test@test.com", "null@null.com", "a@a.com"]

NICK_WORDS = ["小", "大", "爱", "喵", "橙子", "柠檬", "星星", "月亮", "阳光", "可乐", "奶茶",
              "兔子", "熊猫", "糖", "云朵", "木木", "安安", "乐乐", "Lucky", "Coco", "Amy"]

STORES = [
    # code, city pinyin, region (for phone parsing), timezone, currency
    ("SH001", "shanghai", "CN", "Asia/Shanghai", "CNY"),
    ("SH002", "shanghai", "CN", "Asia/Shanghai", "CNY"),
    ("BJ001", "beijing", "CN", "Asia/Shanghai", "CNY"),
    ("GZ001", "guangzhou", "CN", "Asia/Shanghai", "CNY"),
    ("SZ001", "shenzhen", "CN", "Asia/Shanghai", "CNY"),
    ("HZ001", "hangzhou", "CN", "Asia/Shanghai", "CNY"),
    ("CD001", "chengdu", "CN", "Asia/Shanghai", "CNY"),
    ("HK001", "hongkong", "HK", "Asia/Hong_Kong", "HKD"),
    ("HK002", "hongkong", "HK", "Asia/Hong_Kong", "HKD"),
]

TICKET_CATEGORIES = ["退换货", "物流查询", "产品质量", "使用咨询", "投诉", "会员积分"]
